"""Streams per GPU from a `bench/latency.py` run: per concurrency, underruns and TTFA p95, and
the highest concurrency at which no stream underran (issue 13's GPU target: >= 16 real-time
streams with TTFA p95 <= 150 ms).

    python bench/streams_report.py RUN/latency.json [--ttfa-p95 0.15]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def table(data: dict) -> list[dict]:
    """One row per concurrency level (all workloads of the run together)."""
    rows = []
    for cell in sorted(data["cells"], key=lambda c: c["level"]):
        s = cell["summary"]
        rows.append({"level": cell["level"], "workload": cell.get("workload"), "ok": s["ok"],
                     "requests": s["requests"], "underrun": s["requests_with_underrun"],
                     "ttfa_p50": s["ttfa_s"]["p50"], "ttfa_p95": s["ttfa_s"]["p95"],
                     "rtf_p50": s["rtf"]["p50"], "throughput": s["throughput_audio_s_per_s"]})
    return rows


def streams_without_underrun(rows: list[dict], ttfa_p95: float | None = None) -> int:
    """The highest level where every request succeeded without an underrun (and, if given,
    TTFA p95 within the bound); 0 when none."""
    good = [r["level"] for r in rows
            if r["ok"] == r["requests"] and r["underrun"] == 0
            and (ttfa_p95 is None or (r["ttfa_p95"] is not None and r["ttfa_p95"] <= ttfa_p95))]
    return max(good, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a latency.json")
    parser.add_argument("--ttfa-p95", type=float, default=0.15, metavar="S")
    opts = parser.parse_args(argv)
    data = json.loads(opts.run.read_text())
    rows = table(data)
    if not rows:
        print("no cells in the run", file=sys.stderr)
        return 1
    print(f"### {data.get('run_label') or opts.run.parent.name}\n")
    print("| concurrency | workload | ok | underrun req | TTFA p50 (ms) | TTFA p95 (ms) "
          "| RTF p50 | audio s/s |")
    print("|---|---|---|---|---|---|---|---|")
    ms = lambda v: "-" if v is None else f"{1000 * v:.0f}"  # noqa: E731
    for r in rows:
        print(f"| {r['level']} | {r['workload']} | {r['ok']}/{r['requests']} | {r['underrun']} "
              f"| {ms(r['ttfa_p50'])} | {ms(r['ttfa_p95'])} | {r['rtf_p50'] or 0:.2f} "
              f"| {r['throughput'] or 0:.2f} |")
    print(f"\nstreams with no underrun: {streams_without_underrun(rows)}; and TTFA p95 <= "
          f"{1000 * opts.ttfa_p95:.0f} ms: {streams_without_underrun(rows, opts.ttfa_p95)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

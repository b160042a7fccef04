"""Issue 7's table from `bench/scheduling.sh` output: each configuration against serialised.

    .venv/bin/python bench/scheduling_report.py /tmp/voxline-scheduling

Reads `<label>/latency.json` of each run and prints, per configuration: concurrency-1 TTFA,
concurrency-4 TTFAs in arrival order of first audio, their mean and last, the cell's throughput
(audio seconds per wall second), and each stream's playback stall (player starting at its
first byte), with ratios against the first (serialised) configuration.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ORDER = ("serial-fixed20", "interleave-4-20", "batch4-4-20")


def load(folder: Path) -> dict[str, dict]:
    runs = {}
    for path in sorted(folder.glob("*/latency.json")):
        data = json.loads(path.read_text())
        runs[data.get("run_label") or path.parent.name] = data
    return dict(sorted(runs.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER
                       else len(ORDER)))


def cell(data: dict, level: int) -> tuple[list[dict], dict]:
    requests = [r for r in data["requests"] if r["level"] == level and r["ok"]]
    summary = next(c for c in data["cells"] if c["level"] == level)["summary"]
    return requests, summary


def row(data: dict) -> dict[str, float]:
    solo, _ = cell(data, 1)
    together, summary = cell(data, 4)
    ttfa = sorted(r["ttfa_s"] for r in together)
    stalls = [r["stall_s"] for r in together]
    return {
        "ttfa_c1": statistics.median(r["ttfa_s"] for r in solo),
        "ttfa_c4": ttfa,
        "mean_c4": statistics.mean(ttfa),
        "last_c4": ttfa[-1],
        "throughput": summary["throughput_audio_s_per_s"],
        "stall_max": max(stalls),
        "stall_sum": sum(stalls),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    opts = parser.parse_args(argv)
    runs = {label: row(data) for label, data in load(opts.folder).items()}
    if not runs:
        print("no runs found", file=sys.stderr)
        return 1
    base = next(iter(runs.values()))
    print("| configuration | c=1 TTFA p50 (s) | c=4 TTFAs (s) | c=4 mean | c=4 last "
          "| throughput (audio s/s) | stall max / sum (s) |")
    print("|---|---|---|---|---|---|---|")
    for label, r in runs.items():
        ttfas = " / ".join(f"{t:.1f}" for t in r["ttfa_c4"])
        print(f"| {label} | {r['ttfa_c1']:.2f} ({base['ttfa_c1'] / r['ttfa_c1']:.2f}x lower) "
              f"| {ttfas} | {r['mean_c4']:.1f} ({base['mean_c4'] / r['mean_c4']:.2f}x lower) "
              f"| {r['last_c4']:.1f} ({r['last_c4'] / base['last_c4']:.2f}x) "
              f"| {r['throughput']:.3f} ({r['throughput'] / base['throughput']:.2f}x) "
              f"| {r['stall_max']:.1f} / {r['stall_sum']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

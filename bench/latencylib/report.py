"""Write a run's results: JSON with every raw measurement, a Markdown table, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "voxline-latency/1"


def write_json(path: Path, run: dict[str, object]) -> None:
    path.write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")


def _ms(value: object) -> str:
    return f"{value * 1000:.0f}" if isinstance(value, int | float) else "–"


def _num(value: object, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _level(cell: dict) -> str:
    if cell["mode"] == "closed":
        return f"c={int(cell['level'])}"
    return f"λ={cell['level']:g}/s"


def cells_table(cells: list[dict], label_column: str | None = None) -> list[str]:
    """Markdown rows: one per workload × level (× run label when comparing runs)."""
    head = [
        "workload",
        "load",
        "ok/n",
        "err",
        "503",
        "served after 503",
        "TTFA p50",
        "p95",
        "p99",
        "max",
        "p95 with waits",
        "TTLB p50",
        "RTF p50",
        "RTF p95",
        "audio s/s",
        "underrun req",
        "stall p95",
    ]
    if label_column:
        head.insert(0, label_column)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in cells:
        s = cell["summary"]
        ttfa = s["ttfa_s"]
        row = [
            cell["workload"],
            _level(cell),
            f"{s['ok']}/{s['requests']}",
            str(s["errors"]),
            str(s["rejected_503"]),
            str(s.get("served_after_503", 0)),
            _ms(ttfa["p50"]),
            _ms(ttfa["p95"]),
            _ms(ttfa["p99"]),
            _ms(ttfa["max"]),
            _ms(s.get("ttfa_with_waits_s", ttfa)["p95"]),
            _ms(s["ttlb_s"]["p50"]),
            _num(s["rtf"]["p50"]),
            _num(s["rtf"]["p95"]),
            _num(s["throughput_audio_s_per_s"]),
            f"{s['requests_with_underrun']}/{s['ok']}",
            _ms(s["stall_s"]["p95"]),
        ]
        if label_column:
            row.insert(0, str(cell.get("run_label", "")))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def overhead_lines(overhead: list[dict]) -> list[str]:
    if not overhead:
        return []
    lines = [
        "",
        "### Server overhead (concurrency 1, loopback)",
        "",
        "| engine | text | n | in-process first chunk p50 / p95 (ms) "
        "| HTTP TTFA p50 / p95 (ms) | added p50 / p95 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for o in overhead:
        inproc, http, added = o["inprocess_first_chunk_s"], o["http_ttfa_s"], o["added_s"]
        lines.append(
            f"| {o['engine']} | {o['text_id']} | {http['n']} "
            f"| {_num(_x1000(inproc['p50']), 1)} / {_num(_x1000(inproc['p95']), 1)} "
            f"| {_num(_x1000(http['p50']), 1)} / {_num(_x1000(http['p95']), 1)} "
            f"| {_num(_x1000(added['p50']), 1)} / {_num(_x1000(added['p95']), 1)} |"
        )
    return lines


def _x1000(value: object) -> float | None:
    return value * 1000 if isinstance(value, int | float) else None


def markdown(run: dict) -> str:
    """The human summary of one run."""
    env = run["environment"]
    health = env.get("health") or {}
    lines = [
        f"## Latency: {run['model_label']} ({health.get('engine', env.get('engine'))})",
        "",
        f"- date: {run['created']}; commit: {env['git'].get('commit')}"
        f"{' (dirty)' if env['git'].get('dirty') else ''}",
        f"- machine: {env['machine'].get('cpu')} × {env['machine'].get('cpu_count')}; "
        f"GPU: {', '.join(env['machine'].get('gpus') or []) or 'none'}",
        f"- server: device {health.get('device', '?')}, deepspeed {health.get('deepspeed', '?')}, "
        f"fp16 {health.get('fp16', '?')}; text set {run['text_set']}; "
        f"forced GPT length: {run['config'].get('force_length')}",
        f"- command: `{run['command']}`",
        "",
        "TTFA = request sent → first audio byte (of the served attempt; \"with waits\" adds "
        "the Retry-After waits of refused attempts, --retry-503); TTLB = → last byte; "
        "RTF = TTLB / audio seconds; "
        "underruns from a player starting at the first byte (times in ms).",
        "",
    ]
    lines += cells_table(run["cells"])
    lines += overhead_lines(run.get("overhead") or [])
    skipped = run.get("skipped_cells") or []
    if skipped:
        lines += ["", f"Skipped (time budget): {', '.join(skipped)}"]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], out_dir: Path, prefix: str = "") -> list[Path]:
    """TTFA CDF per load level, and TTFA/RTF percentiles vs load; one line per run × workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    workloads = sorted(
        {c["workload"] for r in runs for c in r["cells"]}, key=["short", "medium", "long"].index
    )
    if not workloads:
        return written

    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        for run in runs:
            for cell in (c for c in run["cells"] if c["workload"] == workload):
                ttfa = sorted(
                    r["ttfa_s"] * 1000
                    for r in run["requests"]
                    if r["ok"]
                    and r["workload"] == workload
                    and r["mode"] == cell["mode"]
                    and r["level"] == cell["level"]
                )
                if not ttfa:
                    continue
                ys = [0.0] + [(i + 1) / len(ttfa) for i in range(len(ttfa))]
                ttfa = [ttfa[0]] + ttfa
                label = _level(cell) if len(runs) == 1 else f"{run['run_label']} {_level(cell)}"
                ax.step(ttfa, ys, where="post", label=label)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"TTFA CDF: {workload}")
        ax.set_xlabel("time to first audio (ms)")
        ax.set_ylabel("fraction of requests")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(runs[0]["model_label"] if len(runs) == 1 else "comparison")
    fig.tight_layout()
    path = out_dir / f"{prefix}ttfa_cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        for workload in workloads:
            cells = [c for c in run["cells"] if c["workload"] == workload]
            if not cells:
                continue
            xs = [c["level"] for c in cells]
            name = workload if len(runs) == 1 else f"{run['run_label']} {workload}"
            for q, style in (("p50", "-o"), ("p95", "--x")):
                ttfa = [_x1000(c["summary"]["ttfa_s"][q]) for c in cells]
                rtf = [c["summary"]["rtf"][q] for c in cells]
                ax_t.plot(
                    xs,
                    [v if v is not None else float("nan") for v in ttfa],
                    style,
                    label=f"{name} {q}",
                )
                ax_r.plot(
                    xs,
                    [v if v is not None else float("nan") for v in rtf],
                    style,
                    label=f"{name} {q}",
                )
    mode = runs[0]["cells"][0]["mode"] if runs[0]["cells"] else "closed"
    xlabel = "concurrent clients" if mode == "closed" else "arrival rate (requests/s)"
    ax_t.set(title="TTFA vs load", xlabel=xlabel, ylabel="ms")
    ax_r.set(title="RTF vs load (TTLB / audio s)", xlabel=xlabel, ylabel="RTF")
    ax_r.axhline(1.0, color="grey", lw=0.8)
    levels = sorted({c["level"] for r in runs for c in r["cells"]})
    for ax in (ax_t, ax_r):
        ax.set_xticks(levels)
    for ax in (ax_t, ax_r):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    path = out_dir / f"{prefix}vs_concurrency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def combined_markdown(runs: list[dict]) -> str:
    """One table across several runs (e.g. fp32 / fp16 / DeepSpeed), labelled by run."""
    cells = [{**c, "run_label": r["run_label"]} for r in runs for c in r["cells"]]
    lines = ["## Latency comparison", ""]
    for r in runs:
        h = r["environment"].get("health") or {}
        lines.append(
            f"- {r['run_label']}: {r['model_label']}, device {h.get('device', '?')}, "
            f"deepspeed {h.get('deepspeed', '?')}, fp16 {h.get('fp16', '?')}, "
            f"commit {r['environment']['git'].get('commit')}, {r['created']}"
        )
    lines.append("")
    lines += cells_table(cells, label_column="run")
    for r in runs:
        lines += overhead_lines(r.get("overhead") or [])
    return "\n".join(lines) + "\n"

#!/usr/bin/env python3
"""Voxline latency benchmark: time to first audio, RTF and underruns under concurrency.

Drives a running server (--url) or starts one through the real gunicorn config (--spawn), warms
it up, then runs each workload (short/medium/long lines of a fixed, versioned text set) at each
concurrency level (closed loop) or Poisson arrival rate (open loop) with a fixed number of
requests. Writes latency.json (every raw measurement + environment), latency.md and PNG plots.

Examples:
  bench/latency.py --spawn --engine tone --overhead 50 --concurrency 1 --requests 10
  bench/latency.py --url http://127.0.0.1:8000 --concurrency 1,2,4,8 --requests 16
  bench/latency.py --spawn --engine xtts --xtts-dir /tmp/proxy --device cuda --fp16 \\
      --concurrency 1,4,8 --requests 8 --force-length auto
  bench/latency.py --combine a/latency.json b/latency.json --out cmp/
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from latencylib import environment, report
from latencylib.client import RequestResult, Target, get_json, stream_tts
from latencylib.overhead import load_local_engine, measure_overhead
from latencylib.runner import Cell, RequestPlan, run_closed, run_open
from latencylib.server import SpawnConfig, SpawnedServer
from latencylib.texts import DEFAULT_TEXT_SET, WORKLOADS, load_text_set

logger = logging.getLogger("latency")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _csv(kind):
    def parse(value: str) -> list:
        return [kind(v) for v in value.split(",") if v.strip()] if value else []

    return parse


def _key_value(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    key, _, val = value.partition("=")
    return key.strip(), val


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/latency.py",
        description=__doc__.split("\n\n")[0],
        epilog="Examples:" + __doc__.split("Examples:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_argument_group("server")
    how = where.add_mutually_exclusive_group()
    how.add_argument("--url", help="drive a running server, e.g. http://127.0.0.1:8000")
    how.add_argument("--spawn", action="store_true", help="start gunicorn with the options below")
    how.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="run nothing: merge earlier latency.json files into one table/plots",
    )
    where.add_argument(
        "--engine",
        choices=("tone", "piper", "xtts"),
        default="tone",
        help="--spawn: VOXLINE_ENGINE (default tone)",
    )
    where.add_argument(
        "--xtts-dir",
        type=Path,
        help="XTTS checkpoint folder (--spawn: VOXLINE_XTTS_DIR; with --url: "
        "read only, to label the model and cap forced lengths)",
    )
    where.add_argument("--device", choices=("auto", "cpu", "cuda"), help="VOXLINE_DEVICE")
    where.add_argument("--fp16", action="store_true", help="VOXLINE_FP16=1")
    where.add_argument(
        "--deepspeed",
        choices=("auto", "on", "off"),
        default="off",
        help="VOXLINE_DEEPSPEED (default off)",
    )
    where.add_argument(
        "--server-env",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the spawned server (repeatable), e.g. VOXLINE_TONE_CHUNK_MS=20",
    )
    where.add_argument(
        "--python", default=sys.executable, help="Python that runs gunicorn (default: this one)"
    )
    where.add_argument("--ready-timeout", type=float, default=600.0, metavar="S")

    load = p.add_argument_group("load")
    load.add_argument(
        "--workloads",
        type=_csv(str),
        default=list(WORKLOADS),
        help="comma list of short,medium,long (default all)",
    )
    load.add_argument(
        "--languages",
        default="auto",
        help="comma list, or 'auto': every text-set language the server lists "
        "under /languages (default)",
    )
    load.add_argument(
        "--text-set",
        default=DEFAULT_TEXT_SET,
        help="bench/texts/<NAME>.json or a path (default %(default)s)",
    )
    load.add_argument(
        "--concurrency",
        type=_csv(int),
        default=[1, 2, 4, 8],
        help="closed-loop client counts (default 1,2,4,8)",
    )
    load.add_argument(
        "--rates",
        type=_csv(float),
        default=[],
        help="open-loop Poisson arrival rates in requests/s (replaces --concurrency when given)",
    )
    load.add_argument("--requests", type=int, default=8, help="requests per cell (default 8)")
    load.add_argument(
        "--warmup", type=int, default=2, help="unrecorded requests before measuring (default 2)"
    )
    load.add_argument(
        "--seed",
        type=int,
        default=1234,
        help="request seeds (seed + index) and the Poisson schedule",
    )
    load.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    load.add_argument(
        "--budget",
        type=float,
        metavar="S",
        help="time budget from the CLI's start: a cell is skipped when it would start after "
        "S seconds or is not expected to end by then (judged from the last cell of its workload)",
    )
    load.add_argument(
        "--prebuffer-ms",
        type=float,
        default=0.0,
        help="simulated player starts after this much audio (default 0: at the first byte)",
    )
    load.add_argument(
        "--retry-503",
        action="store_true",
        help="closed loop: a refused client waits the Retry-After and sends the request again "
        "(as a dialer would); TTFA stays per served attempt, waits are reported apart",
    )

    req = p.add_argument_group("request")
    req.add_argument("--speaker", help="voice name (default: the server's default voice)")
    req.add_argument("--sample-rate", type=int, help="ask the server to resample")
    req.add_argument("--top-k", type=int, help="sent as top_k (1 makes XTTS deterministic)")
    req.add_argument("--stream-chunk-size", type=int, help="XTTS GPT tokens per chunk")
    req.add_argument(
        "--phrase-cache",
        action="store_true",
        help="let the server answer repeats from its phrase cache (default: every request "
        "is sent with cache=false, so synthesis is what gets measured)",
    )
    req.add_argument(
        "--param",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any extra request field (JSON value)",
    )
    req.add_argument(
        "--force-length",
        choices=("auto", "on", "off"),
        default="auto",
        help="send min_new_tokens = max_new_tokens estimated from the text (21.5 "
        "GPT tokens per second of speech); auto: only for a random-weight XTTS",
    )
    req.add_argument(
        "--weights",
        choices=("auto", "proxy", "real"),
        default="auto",
        help="what the XTTS weights are (auto: read from --xtts-dir)",
    )
    req.add_argument(
        "--max-tokens-cap",
        type=int,
        help="upper bound of forced lengths (default: from the checkpoint)",
    )

    where.add_argument(
        "--expect",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="refuse to measure (exit 3) unless /health has KEY equal to VALUE (JSON), "
        "e.g. deepspeed=true: a server that fell back to plain inference is not measured",
    )

    over = p.add_argument_group("server overhead (needs --spawn)")
    over.add_argument(
        "--overhead",
        type=int,
        default=0,
        metavar="N",
        help="also alternate N HTTP requests with N in-process engine calls",
    )
    over.add_argument(
        "--overhead-text", help="text id to use (default: the first short English text)"
    )
    over.add_argument("--only-overhead", action="store_true", help="skip the load cells")

    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, help="output folder (default out/latency/<time>)")
    out.add_argument("--label", help="run label in combined tables (default: engine+options)")
    out.add_argument("--no-plots", action="store_true")
    out.add_argument("--no-progress", action="store_true")
    out.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    opts.started = time.monotonic()
    # `timeout` and CI runners send SIGTERM: unwind normally so a spawned server is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if opts.combine:
        return combine(opts.combine, opts.out or Path("out/latency/combined"), opts.no_plots)
    if not opts.url and not opts.spawn:
        print("give --url URL or --spawn (see --help)", file=sys.stderr)
        return 2
    if opts.overhead and not opts.spawn:
        print(
            "--overhead needs --spawn: the in-process engine must match the server's",
            file=sys.stderr,
        )
        return 2
    out_dir = opts.out or REPO_ROOT / "out" / "latency" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)

    with contextlib.ExitStack() as stack:
        spawn_config = None
        if opts.spawn:
            spawn_config = SpawnConfig(
                engine=opts.engine,
                xtts_dir=opts.xtts_dir,
                device=opts.device,
                fp16=opts.fp16,
                deepspeed=opts.deepspeed,
                extra_env=dict(opts.server_env),
                python=opts.python,
                ready_timeout_s=opts.ready_timeout,
            )
            started = time.perf_counter()
            server = stack.enter_context(SpawnedServer(spawn_config, out_dir / "server.log"))
            logger.info("server ready in %.1f s", time.perf_counter() - started)
            target = server.target
        else:
            target = Target.from_url(opts.url)
        _, health = get_json(target, "/health")
        health = health if isinstance(health, dict) else {}
        unmet = _unmet_expectations(opts.expect, health)
        if unmet:
            logger.error("server does not match --expect: %s", "; ".join(unmet))
            return 3
        run = measure(opts, target, health, spawn_config)

    report.write_json(out_dir / "latency.json", run)
    md = report.markdown(run)
    (out_dir / "latency.md").write_text(md, encoding="utf-8")
    if not opts.no_plots and run["cells"]:
        report.plot([run], out_dir)
    print(md)
    logger.info("wrote %s", out_dir)
    if run["interrupted"]:
        return 128 + signal.SIGTERM
    failed = sum(c["summary"]["errors"] for c in run["cells"])
    return 1 if failed else 0


def measure(opts, target: Target, health: dict, spawn_config: SpawnConfig | None) -> dict:
    """Everything between a ready server and the results dict."""
    engine = str(health.get("engine") or opts.engine)
    checkpoint = environment.describe_checkpoint(opts.xtts_dir)
    label = environment.model_label(engine, checkpoint, opts.weights)
    random_weights = (
        engine == "xtts"
        and label != environment.REAL_LABEL
        and (opts.weights == "proxy" or bool(checkpoint and checkpoint.get("random_weights")))
    )
    force = opts.force_length == "on" or (opts.force_length == "auto" and random_weights)
    if engine == "xtts" and not force and label == "xtts (weights not identified)":
        logger.warning("cannot tell the XTTS weights; pass --weights proxy to force lengths")
    cap = opts.max_tokens_cap or (checkpoint or {}).get("max_new_tokens")

    texts = load_text_set(opts.text_set)
    overhead_text = _pick_overhead_text(texts, opts.overhead_text) if opts.overhead else None
    languages = _languages(opts.languages, target, texts.languages())
    params: dict[str, object] = {} if opts.phrase_cache else {"cache": False}
    if opts.top_k is not None:
        params["top_k"] = opts.top_k
    if opts.stream_chunk_size is not None:
        params["stream_chunk_size"] = opts.stream_chunk_size
    for key, value in opts.param:
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    plan = RequestPlan(
        speaker=opts.speaker,
        sample_rate=opts.sample_rate,
        params=params,
        seed=opts.seed,
        force_length=force,
        max_tokens_cap=cap,
        timeout_s=opts.timeout,
        prebuffer_s=opts.prebuffer_ms / 1000,
        retry_503=opts.retry_503,
    )
    by_workload = {w: texts.select(w, languages) for w in opts.workloads}
    by_workload = {w: t for w, t in by_workload.items() if t}
    if opts.only_overhead:
        by_workload = {}
    levels = [("open", r) for r in opts.rates] or [("closed", c) for c in opts.concurrency]
    total = len(by_workload) * len(levels) * opts.requests + opts.overhead + opts.warmup
    progress = _progress(total, opts.no_progress)

    warmup = _warm_up(
        target, plan, by_workload or {"short": texts.select("short", {"en"})}, opts.warmup, progress
    )
    cells, skipped, interrupted = _run_cells(opts, target, plan, by_workload, levels, progress)
    overhead = []
    if opts.overhead and not interrupted:
        overhead.append(_overhead(opts, target, plan, spawn_config, overhead_text, progress))
    progress.close()

    return {
        "schema": report.SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "run_label": opts.label or _default_label(engine, health),
        "model_label": label,
        "text_set": texts.version,
        "config": {
            "mode": levels[0][0],
            "levels": [lv for _, lv in levels],
            "requests_per_cell": opts.requests,
            "workloads": list(by_workload),
            "languages": sorted(languages),
            "force_length": force,
            "max_tokens_cap": cap,
            "request_fields": params,
            "speaker": opts.speaker,
            "sample_rate": opts.sample_rate,
            "seed": opts.seed,
            "prebuffer_ms": opts.prebuffer_ms,
            "warmup": opts.warmup,
        },
        "environment": {
            "engine": engine,
            "target": target.url,
            "spawned": spawn_config.voxline_env(target.port) if spawn_config else None,
            "health": health,
            "checkpoint": checkpoint,
            "git": environment.git_info(),
            "packages_client": environment.package_versions(),
            "machine": environment.machine_info(),
        },
        "cells": [c.to_json() for c in cells],
        "skipped_cells": skipped,
        "interrupted": interrupted,
        "requests": [r.to_json() for c in cells for r in c.requests],
        "warmup_requests": [r.to_json() for r in warmup],
        "overhead": overhead,
    }


def _unmet_expectations(expect: list[tuple[str, str]], health: dict) -> list[str]:
    unmet = []
    for key, raw in expect:
        try:
            want = json.loads(raw)
        except ValueError:
            want = raw
        if health.get(key) != want:
            unmet.append(f"{key} is {health.get(key)!r}, expected {want!r}")
    return unmet


def _run_cells(opts, target, plan, by_workload, levels, progress):
    """Every workload × level cell in order, within the time budget; stops early on SIGTERM."""
    cells: list[Cell] = []
    skipped: list[str] = []
    last_duration: dict[str, float] = {}
    for workload, wtexts in by_workload.items():
        for mode, level in levels:
            name = f"{workload}@{'c' if mode == 'closed' else 'rate'}={level:g}"
            elapsed = time.monotonic() - opts.started
            if opts.budget is not None and elapsed + last_duration.get(workload, 0) > opts.budget:
                skipped.append(name)
                progress.update(opts.requests)
                continue
            progress.set_postfix_str(name)

            def done(result: RequestResult) -> None:
                progress.update(1)

            try:
                if mode == "closed":
                    cell = run_closed(
                        target, plan, wtexts, workload, int(level), opts.requests, done
                    )
                else:
                    cell = run_open(
                        target, plan, wtexts, workload, level, opts.requests, opts.seed, done
                    )
            except (KeyboardInterrupt, SystemExit):
                logger.warning("interrupted during %s: writing the cells finished so far", name)
                return cells, skipped + [name], True
            cells.append(cell)
            last_duration[workload] = cell.wall_s
            s = cell.summary()
            logger.info(
                "%s: ok %d/%d, TTFA p50 %s ms, RTF p50 %s",
                name,
                s["ok"],
                s["requests"],
                _fmt_ms(s["ttfa_s"]["p50"]),
                _fmt(s["rtf"]["p50"]),
            )
    return cells, skipped, False


def _languages(choice: str, target: Target, available: list[str]) -> set[str]:
    if choice != "auto":
        return {c.strip() for c in choice.split(",") if c.strip()}
    status, body = get_json(target, "/languages")
    if isinstance(body, dict):
        body = body.get("languages")
    if status != 200 or not isinstance(body, list):
        logger.warning("no language list from /languages; using English only")
        return {"en"}
    served = {str(x.get("code", x)) if isinstance(x, dict) else str(x) for x in body}
    chosen = {lang for lang in available if lang in served}
    return chosen or {"en"}


def _warm_up(target: Target, plan: RequestPlan, by_workload: dict, count: int, progress):
    """Unrecorded requests cycling over the workloads' first texts (lazy setup, caches)."""
    firsts = [texts[0] for texts in by_workload.values() if texts]
    results = []
    for i in range(count if firsts else 0):
        text = firsts[i % len(firsts)]
        body, tokens, sentences = plan.payload(text, i)
        result = RequestResult(
            i, "warmup", "closed", 1, text.id, text.language, len(text.text), tokens, sentences
        )
        results.append(stream_tts(target, body, result, plan.timeout_s))
        if not result.ok:
            logger.warning("warm-up request failed: %s %s", result.status, result.error)
        progress.update(1)
    return results


def _overhead(opts, target, plan, spawn_config, text, progress) -> dict:
    progress.set_postfix_str("overhead: loading the engine in-process")
    local = load_local_engine(spawn_config.env(target.port), opts.speaker)
    body, _, _ = plan.payload(text, 0)
    progress.set_postfix_str(f"overhead {local.engine.name}")
    deadline = opts.started + opts.budget if opts.budget is not None else None
    result = measure_overhead(
        local,
        target,
        body,
        text.id,
        opts.overhead,
        opts.timeout,
        lambda: progress.update(1),
        deadline=deadline,
    )
    data = result.to_json()
    logger.info(
        "overhead %s: added p50 %s ms, p95 %s ms",
        local.engine.name,
        _fmt_ms(data["added_s"]["p50"]),
        _fmt_ms(data["added_s"]["p95"]),
    )
    return data


def _pick_overhead_text(texts, text_id: str | None):
    if text_id:
        found = [t for t in texts.texts if t.id == text_id]
        if not found:
            raise SystemExit(f"--overhead-text {text_id!r} is not in text set {texts.version}")
        return found[0]
    shorts = texts.select("short", {"en"}) or texts.select("short") or list(texts.texts)
    return shorts[0]


def _default_label(engine: str, health: dict) -> str:
    parts = [engine, str(health.get("device", ""))]
    if health.get("fp16"):
        parts.append("fp16")
    if health.get("deepspeed"):
        parts.append("deepspeed")
    return " ".join(p for p in parts if p)


def _progress(total: int, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="req", disable=disabled, file=sys.stderr, dynamic_ncols=True)


def _fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _fmt_ms(value) -> str:
    return f"{value * 1000:.1f}" if isinstance(value, int | float) else "-"


def combine(paths: list[Path], out_dir: Path, no_plots: bool) -> int:
    """Merge several runs' JSON into one Markdown table and comparison plots."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    out_dir.mkdir(parents=True, exist_ok=True)
    md = report.combined_markdown(runs)
    (out_dir / "combined.md").write_text(md, encoding="utf-8")
    if not no_plots:
        report.plot(runs, out_dir, prefix="combined_")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

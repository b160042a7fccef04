"""Cluster benchmark: what HAProxy adds to time-to-first-audio, and throughput with N replicas.

    .venv/bin/python bench/cluster.py [--requests 200] [--seconds 10] [--replicas 1,2,3]

Part 1 sends the same short request alternately to one replica directly and through the proxy
(same replica), so machine noise hits both sides alike, and prints TTFA p50/p95 of each and the
difference. The tone engine's first chunk is set to 0 ms, so TTFA is the serving path alone.

Part 2 runs 4 closed-loop clients per replica for `--seconds` against 1, 2, 3 tone replicas
behind the proxy and prints audio seconds delivered per wall second. One tone replica paces
its output like a model that is the bottleneck (its scheduler sleeps through every chunk, so it
delivers at most 1 s of audio per second, however many streams share it); the proxy, gunicorn
and encoding are real CPU work, so the ratio to N x one replica shows what the CPU allows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cluster_load import StreamClient, closed_loop, percentile  # noqa: E402
from devtools.cluster import Cluster  # noqa: E402

# About 50 ms of audio (speed 4): TTFA is what counts, the rest of the stream is kept short.
BODY = {"text": "Hi.", "speed": 4, "format": "pcm", "cache": False}
# About 0.64 s of audio: 4 streams share a replica, so one takes about 2.6 s.
LOAD_BODY = {"text": "Hi there.", "format": "pcm", "cache": False}
BYTES_PER_AUDIO_S = 24000 * 2  # tone engine: 24 kHz, 16-bit pcm
ENV = {"VOXLINE_LOG_LEVEL": "warning", "VOXLINE_TONE_FIRST_CHUNK_MS": "0"}


def proxy_overhead(requests: int) -> dict[str, list[float]]:
    """TTFA of the same request sent alternately direct and through the proxy."""
    with tempfile.TemporaryDirectory() as run_dir, Cluster(1, "tone", run_dir, ENV) as cluster:
        clients = {
            "direct": StreamClient(cluster.replicas[0].url),
            "proxy": StreamClient(cluster.url),
        }
        ttfa: dict[str, list[float]] = {"direct": [], "proxy": []}
        for i in range(requests + 20):
            for name, client in clients.items():
                out = client.request("/tts_stream", BODY)
                if not out.ok:
                    raise RuntimeError(f"{name}: {out.status} {out.error}")
                if i >= 20:  # warm-up
                    ttfa[name].append(out.ttfa_s)
        for client in clients.values():
            client.close()
    return ttfa


def throughput(replicas: int, seconds: float) -> tuple[float, float, int, int]:
    """(audio s per s, TTFA p50 s, requests ok, failed) in the window, 4 clients per replica."""
    env = {"VOXLINE_LOG_LEVEL": "warning"}
    with (
        tempfile.TemporaryDirectory() as run_dir,
        Cluster(replicas, "tone", run_dir, env) as cluster,
    ):
        stop = threading.Event()
        result: list = []
        thread = threading.Thread(
            target=lambda: result.append(closed_loop(cluster.url, 4 * replicas, stop, LOAD_BODY))
        )
        thread.start()
        time.sleep(2)  # ramp-up, excluded below
        begin = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
        stop.set()
        thread.join(60)
    # Streams are paced in real time, so each delivered its bytes evenly over its duration:
    # count the share of every request that overlaps the window.
    ok, failed, audio_s = [], 0, 0.0
    for out in result[0]:
        overlap = min(out.end, end) - max(out.start, begin)
        if overlap <= 0:
            continue
        if not out.ok:
            failed += 1
            continue
        ok.append(out)
        audio_s += len(out.data) / BYTES_PER_AUDIO_S * overlap / (out.end - out.start)
    ttfa = percentile([o.ttfa_s for o in ok if o.ttfa_s is not None], 50)
    return audio_s / (end - begin), ttfa, len(ok), failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--replicas", default="1,2,3")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    ttfa = proxy_overhead(args.requests)
    print(f"\nTTFA, {args.requests} alternating requests to one tone replica (first chunk 0 ms)")
    print(f"{'path':8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in ttfa.items():
        print(f"{name:8} {percentile(values, 50) * 1e3:8.2f} {percentile(values, 95) * 1e3:8.2f}")
    added = [(percentile(ttfa["proxy"], q) - percentile(ttfa["direct"], q)) * 1e3 for q in (50, 95)]
    print(f"{'added':8} {added[0]:8.2f} {added[1]:8.2f}")

    print(f"\nthroughput, 4 closed-loop clients per replica, {args.seconds:.0f} s each")
    print(
        f"{'replicas':>8} {'audio s/s':>10} {'per replica':>12} {'x one':>7} "
        f"{'TTFA p50 ms':>12} {'done':>6} {'fail':>5}"
    )
    base = None
    for n in (int(x) for x in args.replicas.split(",")):
        rate, p50, done, failed = throughput(n, args.seconds)
        base = base or rate
        print(
            f"{n:8d} {rate:10.2f} {rate / n:12.2f} {rate / base:7.2f} {p50 * 1e3:12.1f} "
            f"{done:6d} {failed:5d}"
        )
    print("(one tone replica can deliver at most 1.00 audio s/s: its model stand-in paces it)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

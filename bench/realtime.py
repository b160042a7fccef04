"""LLM-like token streams spoken two ways in one run: (a) the realtime session API, (b) what
frameworks do today (client-side sentence aggregation, one POST /tts_stream per sentence,
sentences one after the other).

Per engine it reports medians over the texts: first token -> first audio, underruns and stall
time of a simulated real-time player, total time (first token -> end of playback), and for (a)
cancel -> last audio delta and cancel -> ack.

    .venv/bin/python bench/realtime.py --engine piper --texts 4
    .venv/bin/python bench/realtime.py --engine xtts-tiny --texts 2
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latencylib.player import Arrival, simulate_player  # noqa: E402
from bench.latencylib.server import SpawnConfig, SpawnedServer  # noqa: E402
from bench.latencylib.texts import load_text_set  # noqa: E402

_TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
# Tiny random-weight XTTS: deterministic, fixed length per segment (as the e2e tests do).
XTTS_FIXED = {"top_k": 1, "seed": 1, "min_new_tokens": 20, "max_new_tokens": 20}


@dataclass
class Run:
    """One text spoken one way: timestamps relative to the first token sent."""

    first_audio_s: float | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    cancel_to_last_delta_ms: float | None = None
    cancel_to_ack_ms: float | None = None
    cancel_to_idle_ms: float | None = None

    def add(self, t: float, nbytes: int) -> None:
        if self.first_audio_s is None:
            self.first_audio_s = t
        self.arrivals.append(Arrival(t, nbytes))


def tokens_of(text: str) -> list[str]:
    """LLM-like tokens: words with their leading space, punctuation on its own."""
    return _TOKEN.findall(text)


def token_times(count: int, rng: random.Random, low_ms: float, high_ms: float) -> list[float]:
    """Send times (s) of `count` tokens, each 20-50 ms after the previous by default."""
    times, t = [], 0.0
    for _ in range(count):
        times.append(t)
        t += rng.uniform(low_ms, high_ms) / 1000
    return times


def replay(tokens: list[str], times: list[float], send, t0: float) -> None:
    """Call `send(token)` at each token's time after `t0`."""
    for token, at in zip(tokens, times, strict=True):
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(token)


def session_run(
    url: str,
    settings: dict,
    tokens: list[str],
    times: list[float],
    cancel_after_s: float | None = None,
) -> Run:
    """(a) Stream the tokens into a session; read deltas; optionally cancel mid-speech."""
    run = Run()
    ws_url = url.replace("http", "ws", 1) + "/v1/audio/speech/stream"
    with connect(ws_url, open_timeout=30, max_size=None) as ws:
        json.loads(ws.recv(30))
        ws.send(json.dumps({"type": "session.update", "session": settings}))
        assert json.loads(ws.recv(30))["type"] == "session.updated"
        lock = threading.Lock()

        def send(message: dict) -> None:
            with lock:
                ws.send(json.dumps(message))

        stop = threading.Event()
        t0 = time.monotonic()
        sender = threading.Thread(target=_send_tokens, args=(send, tokens, times, t0, stop))
        sender.start()
        try:
            _read_session(ws, send, run, t0, cancel_after_s)
        finally:
            stop.set()  # a cancelled text: the "LLM" stops too
            sender.join()
    return run


class _Stopped(Exception):
    """The reader stopped the token stream."""


def _send_tokens(send, tokens, times, t0, stop: threading.Event) -> None:
    def append(token: str) -> None:
        if stop.is_set():
            raise _Stopped
        send({"type": "input_text.append", "text": token})

    try:
        replay(tokens, times, append, t0)
        send({"type": "input_text.end"})
    except _Stopped:
        pass


def _read_session(ws, send, run: Run, t0: float, cancel_after_s: float | None) -> None:
    cancel_at = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        if (
            cancel_after_s is not None
            and cancel_at is None
            and run.first_audio_s is not None
            and now >= run.first_audio_s + cancel_after_s
        ):
            cancel_at = now
            send({"type": "context.cancel"})
        try:  # short reads, so the cancel goes out on time between deltas
            message = json.loads(ws.recv(0.005))
        except TimeoutError:
            continue
        now = time.monotonic() - t0
        if message["type"] == "speech.audio.delta":
            run.add(now, len(base64.b64decode(message["audio"])))
            if cancel_at is not None:
                run.cancel_to_last_delta_ms = (now - cancel_at) * 1000
        elif message["type"] == "error":
            raise RuntimeError(message)
        elif message["type"] == "speech.audio.done":
            return
        elif message["type"] == "context.cancelled":
            run.cancel_to_ack_ms = (now - cancel_at) * 1000
            run.cancel_to_last_delta_ms = run.cancel_to_last_delta_ms or 0.0
            return
    raise TimeoutError("the session did not finish in 120 s")


def sentences_run(url: str, params: dict, tokens: list[str], times: list[float]) -> Run:
    """(b) Aggregate tokens into sentences client-side; POST /tts_stream each, in order."""
    run = Run()
    ready: list[str | None] = []
    cond = threading.Condition()
    t0 = time.monotonic()
    aggregator = threading.Thread(target=_aggregate, args=(tokens, times, t0, ready, cond))
    aggregator.start()
    with requests.Session() as http:
        index = 0
        while True:
            with cond:
                cond.wait_for(lambda i=index: len(ready) > i)
                sentence = ready[index]
            if sentence is None:
                break
            index += 1
            body = {**params, "text": sentence, "format": "pcm", "cache": False}
            with http.post(url + "/tts_stream", json=body, stream=True, timeout=120) as r:
                r.raise_for_status()
                for chunk in r.iter_content(None):
                    run.add(time.monotonic() - t0, len(chunk))
    aggregator.join()
    return run


def _aggregate(tokens, times, t0, ready: list, cond: threading.Condition) -> None:
    """A sentence is complete when a token ends with . ! ? and the next starts a new word."""
    buffer = ""

    def push(token: str) -> None:
        nonlocal buffer
        if buffer and token[:1].isspace() and _SENTENCE_END.search(buffer):
            with cond:
                ready.append(buffer.strip())
                cond.notify_all()
            buffer = ""
        buffer += token

    replay(tokens, times, push, t0)
    with cond:
        if buffer.strip():
            ready.append(buffer.strip())
        ready.append(None)
        cond.notify_all()


@dataclass
class Figures:
    first_audio_ms: float
    underruns: int
    stall_ms: float
    total_s: float


def figures(run: Run, bytes_per_second: float) -> Figures:
    played = simulate_player(run.arrivals, bytes_per_second)
    return Figures(run.first_audio_s * 1000, played.underruns, played.stall_s * 1000, played.end_t)


def median(values) -> float:
    return statistics.median(values)


def bench_engine(args, engine: str, url: str, rate: int, texts) -> list[str]:
    """Run every text both ways (alternating which goes first, after one warm-up of each),
    then the cancel runs; return the table's lines."""
    params = XTTS_FIXED if engine == "xtts-tiny" else {}
    settings = {**params, "format": "pcm"}
    rng = random.Random(args.seed)
    a_runs, b_runs, cancels = [], [], []

    def both(tokens: list[str], times: list[float], a_first: bool) -> tuple[Figures, Figures]:
        ways = [
            lambda: session_run(url, settings, tokens, times),
            lambda: sentences_run(url, params, tokens, times),
        ]
        runs = [way() for way in (ways if a_first else ways[::-1])]
        a, b = runs if a_first else runs[::-1]
        return figures(a, rate * 2), figures(b, rate * 2)

    warm = tokens_of(texts[0].text)
    both(warm, token_times(len(warm), rng, *args.token_ms), True)
    for i, text in enumerate(texts):
        tokens = tokens_of(text.text)
        times = token_times(len(tokens), rng, args.token_ms[0], args.token_ms[1])
        wait_idle(url)
        a, b = both(tokens, times, a_first=i % 2 == 0)
        a_runs.append(a)
        b_runs.append(b)
        print(f"<!-- {text.id}: {a} | {b} -->", flush=True)
        cancelled = session_run(url, settings, tokens, times, cancel_after_s=0.3)
        cancelled.cancel_to_idle_ms = cancelled.cancel_to_ack_ms + wait_idle(url) * 1000
        cancels.append(cancelled)
    return table(engine, a_runs, b_runs, cancels)


def wait_idle(url: str, timeout_s: float = 60.0) -> float:
    """Seconds until the server's engine is idle (a cancelled step runs to its end), so the
    next measurement starts on an idle server."""
    started = time.monotonic()
    while requests.get(url + "/health", timeout=5).json()["busy"]:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("the engine stayed busy")
        time.sleep(0.01)
    return time.monotonic() - started


def table(engine: str, a: list[Figures], b: list[Figures], cancels: list[Run]) -> list[str]:
    def row(name: str, get, fmt: str, ratio: bool = True) -> str:
        va, vb = median(get(x) for x in a), median(get(x) for x in b)
        # The median of per-text ratios: texts differ more than the two ways do.
        ratios = [get(y) / get(x) for x, y in zip(a, b, strict=True) if get(x)]
        r = f"{median(ratios):.2f}x" if ratio and ratios else "-"
        return f"| {engine} | {name} | {va:{fmt}} | {vb:{fmt}} | {r} |"

    last = median(c.cancel_to_last_delta_ms for c in cancels)
    ack = median(c.cancel_to_ack_ms for c in cancels)
    idle = median(c.cancel_to_idle_ms for c in cancels)
    return [
        row("first token -> first audio (ms)", lambda f: f.first_audio_ms, ".0f"),
        row("underruns (gaps) per text", lambda f: f.underruns, ".1f", ratio=False),
        row("stall time per text (ms)", lambda f: f.stall_ms, ".0f", ratio=False),
        row("total: first token -> end of playback (s)", lambda f: f.total_s, ".2f"),
        f"| {engine} | cancel -> last audio delta (ms) | {last:.1f} | n/a | - |",
        f"| {engine} | cancel -> context.cancelled ack (ms) | {ack:.1f} | n/a | - |",
        f"| {engine} | cancel -> engine idle (ms) | {idle:.0f} | n/a | - |",
    ]


def spawn(engine: str, workdir: Path) -> tuple[SpawnedServer, int]:
    """A gunicorn server for the engine; returns it and its native sample rate."""
    env = {
        "VOXLINE_CACHE_DIR": str(workdir / "cache"),
        "VOXLINE_MAX_BATCH": "1",
        "VOXLINE_PHRASE_CACHE_MB": "0",
    }
    if engine == "piper":
        return SpawnedServer(SpawnConfig("piper", extra_env=env), workdir / "piper.log"), 22050
    from bench.make_xtts_checkpoint import build

    checkpoint = build("tiny", workdir / "tiny-xtts", seed=0)
    root = Path(__file__).resolve().parents[1]
    env["VOXLINE_SPEAKERS_DIR"] = str(root / "speakers")
    config = SpawnConfig("xtts", xtts_dir=checkpoint, extra_env=env)
    return SpawnedServer(config, workdir / "xtts.log"), 24000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", choices=("piper", "xtts-tiny"))
    parser.add_argument("--texts", type=int, default=7, help="medium/long English texts")
    parser.add_argument("--token-ms", type=float, nargs=2, default=(20.0, 50.0))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    texts = [
        t for t in load_text_set().texts if t.language == "en" and t.workload in ("medium", "long")
    ][: args.texts]
    mean_ms = sum(args.token_ms) / 2
    print(
        f"{len(texts)} texts, tokens every {args.token_ms[0]:g}-{args.token_ms[1]:g} ms "
        f"(~{1000 / mean_ms:.0f} tokens/s), medians"
    )
    print("| engine | metric | (a) session | (b) POST per sentence | (b)/(a) per text |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engine or ["piper"]:
            server, rate = spawn(engine, Path(tmp))
            with server:
                url = f"http://127.0.0.1:{server.port}"
                for line in bench_engine(args, engine, url, rate, texts):
                    print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

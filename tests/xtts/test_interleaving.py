"""Interleaved synthesis on one model: every request exactly as if it ran alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voxline.engines.base import GeneratorStream, SynthesisParams
from voxline.engines.xtts_engine import XttsEngine
from voxline.scheduler import Scheduler

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tiny_xtts):
    return XttsEngine(tiny_xtts, device="cpu", chunk_schedule=(4, 10))


@pytest.fixture(scope="module")
def voices(engine):
    rate = 16000
    t = np.arange(3 * rate) / rate
    made = {
        "low": engine.compute_conditioning(
            [_clip(0.3 * np.sin(2 * np.pi * 110 * t), rate)]),
        "high": engine.compute_conditioning(
            [_clip(0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * np.sin(2 * np.pi * 900 * t), rate)]),
    }
    made["studio"] = engine.builtin_voices()["Studio Sine"]
    return made


def _clip(samples, rate):
    from voxline.engines.base import Clip

    return Clip(samples.astype(np.float32), rate, "synthetic")


REQUESTS = [
    # text, voice, params
    ("Good morning, how can I help?", "low",
     SynthesisParams(top_k=1, seed=1, min_new_tokens=30, max_new_tokens=30)),
    ("Your parcel arrives tomorrow.", "high",
     SynthesisParams(top_k=50, seed=2, min_new_tokens=18, max_new_tokens=18)),
    ("Press one for sales.", "studio",
     SynthesisParams(top_k=50, temperature=1.0, seed=3, min_new_tokens=25, max_new_tokens=25)),
    ("Thanks for waiting.", "low",
     SynthesisParams(top_k=1, seed=4, min_new_tokens=9, max_new_tokens=9, speed=1.3)),
]


def solo(engine, voices, text, voice, params):
    return np.concatenate(list(engine.stream(text, voices[voice], "en", params)))


def opener(engine, voices, text, voice, params):
    return [lambda: engine.open_stream(text, voices[voice], "en", params)]


def collect(handle, out, key):
    out[key] = np.concatenate(list(handle.chunks()))


def test_concurrent_requests_equal_their_solo_runs(engine, voices):
    expected = [solo(engine, voices, *r) for r in REQUESTS]
    scheduler = Scheduler(max_queue=8, max_active=8)
    handles = [scheduler.submit(f"r{i}", opener(engine, voices, *r), engine.sample_rate)
               for i, r in enumerate(REQUESTS)]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=collect, args=(h, results, i))
               for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want, err_msg=f"request {i}")


def test_cancelling_one_request_leaves_the_others_exact(engine, voices):
    expected = [solo(engine, voices, *r) for r in REQUESTS[:2]]
    scheduler = Scheduler(max_queue=8, max_active=8)
    victim = scheduler.submit("victim", opener(engine, voices, *REQUESTS[2]), engine.sample_rate)
    keep = [scheduler.submit(f"k{i}", opener(engine, voices, *r), engine.sample_rate)
            for i, r in enumerate(REQUESTS[:2])]
    chunks = victim.chunks()
    next(chunks)
    chunks.close()  # the client hung up after its first chunk
    results: dict[int, np.ndarray] = {}
    for i, h in enumerate(keep):
        collect(h, results, i)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)
    deadline = time.monotonic() + 5
    while scheduler.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scheduler.active == 0


def test_chunk_schedule_is_continuous_against_one_full_decode(engine, voices):
    text, voice, params = REQUESTS[0]
    scheduled = list(engine.stream(text, voices[voice], "en", params))  # 4, 10, 10, 6 tokens
    whole = list(engine.stream(text, voices[voice], "en",
                               SynthesisParams(**{**params.__dict__, "stream_chunk_size": 1000})))
    assert len(scheduled) == 4 and len(whole) == 1
    a, b = np.concatenate(scheduled), whole[0]
    assert len(a) == len(b)  # same sample count as one full decode
    lags = range(-200, 201)
    corr = [np.dot(a[max(0, k):len(a) + min(0, k)], b[max(0, -k):len(b) - max(0, k)])
            for k in lags]
    assert lags[int(np.argmax(corr))] == 0  # aligned
    # Differences only around the chunk joins (the crossfade windows), nowhere else.
    joins = np.cumsum([len(c) for c in scheduled[:-1]])
    near = np.zeros(len(a), dtype=bool)
    for j in joins:
        near[max(0, j - 1024):j + 1024] = True
    assert np.max(np.abs(a[~near] - b[~near])) < 1e-3 * max(1e-6, np.max(np.abs(b)))


class TimedStream(GeneratorStream):
    """A fake stream whose chunks are one second of audio each, made in 20 ms."""

    def __init__(self, name, n, log):
        def chunks():
            for i in range(n):
                time.sleep(0.02)
                log.append((name, i))
                yield np.zeros(24000, dtype=np.float32)
        super().__init__(chunks())


def test_new_request_gets_its_first_chunk_before_a_stream_far_ahead_gets_its_next():
    log: list[tuple[str, int]] = []
    scheduler = Scheduler(max_queue=8, max_active=8)
    ahead = scheduler.submit("ahead", [lambda: TimedStream("ahead", 50, log)], 24000)
    first = ahead.chunks()
    for _ in range(3):
        next(first)  # three seconds of audio sent in a few ms: far ahead of playback
    arrived_at = len(log)
    newcomer = scheduler.submit("new", [lambda: TimedStream("new", 2, log)], 24000)
    received = list(newcomer.chunks())
    assert len(received) == 2
    # The stream far ahead yielded: at most the chunk it was making when the newcomer arrived
    # came between the arrival and the newcomer's last chunk.
    between = log[arrived_at:log.index(("new", 1))]
    assert sum(1 for name, _ in between if name == "ahead") <= 1, log
    first.close()

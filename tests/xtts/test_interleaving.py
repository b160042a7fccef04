"""Interleaved synthesis on one model: every request exactly as if it ran alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voxline.engines.base import Engine, SynthesisParams, Utterance, chunk_parts
from voxline.scheduler import Scheduler
from voxline.scheduling.costs import StepCosts

pytestmark = pytest.mark.slow

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

def audio(chunks) -> list[np.ndarray]:
    """The samples of engine chunks (a sentence's last chunk carries its words too)."""
    return [chunk_parts(c)[0] for c in chunks]


def solo(engine, voices, text, voice, params):
    return np.concatenate(audio(engine.stream(text, voices[voice], "en", params)))


def utterances(voices, text, voice, params):
    return [Utterance(text, voices[voice], "en", params)]


def collect(handle, out, key):
    out[key] = np.concatenate(audio(handle.chunks()))


def collect_all(handles) -> dict[int, np.ndarray]:
    """Read every handle's audio from its own thread, as request threads do."""
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=collect, args=(h, results, i))
               for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_requests_equal_their_solo_runs(engine, voices):
    expected = [solo(engine, voices, *r) for r in REQUESTS]
    scheduler = Scheduler(max_queue=8, max_active=8)
    handles = [scheduler.submit(f"r{i}", engine, utterances(voices, *r))
               for i, r in enumerate(REQUESTS)]
    results = collect_all(handles)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want, err_msg=f"request {i}")


def test_cancelling_one_request_leaves_the_others_exact(engine, voices):
    expected = [solo(engine, voices, *r) for r in REQUESTS[:2]]
    scheduler = Scheduler(max_queue=8, max_active=8)
    victim = scheduler.submit("victim", engine, utterances(voices, *REQUESTS[2]))
    keep = [scheduler.submit(f"k{i}", engine, utterances(voices, *r))
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
    scheduled = audio(engine.stream(text, voices[voice], "en", params))  # 4, 10, 10, 6 tokens
    whole = audio(engine.stream(text, voices[voice], "en",
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


class TimedEngine(Engine):
    """A fake engine whose chunks are one second of audio each, made in 20 ms; the text says
    how many chunks, the voice names the stream in the log."""

    def __init__(self, log):
        self.log = log

    def stream(self, text, voice, language, params):
        for i in range(int(text)):
            time.sleep(0.02)
            self.log.append((voice["name"], i))
            yield np.zeros(24000, dtype=np.float32)


def timed(name, n):
    return [Utterance(str(n), {"name": name}, "en", SynthesisParams())]


def test_new_request_gets_its_first_chunk_before_a_stream_far_ahead_gets_its_next():
    log: list[tuple[str, int]] = []
    scheduler = Scheduler(max_queue=8, max_active=8)
    engine = TimedEngine(log)
    ahead = scheduler.submit("ahead", engine, timed("ahead", 50))
    first = (c for c in ahead.chunks() if len(c))  # audio (words ride in empty chunks too)
    for _ in range(3):
        next(first)  # three seconds of audio sent in a few ms: far ahead of playback
    arrived_at = len(log)
    newcomer = scheduler.submit("new", engine, timed("new", 2))
    received = [c for c in newcomer.chunks() if len(c)]
    assert len(received) == 2
    # The stream far ahead yielded: at most the chunk it was making when the newcomer arrived
    # came between the arrival and the newcomer's last chunk.
    between = log[arrived_at:log.index(("new", 1))]
    assert sum(1 for name, _ in between if name == "ahead") <= 1, log
    first.close()


GREEDY = [
    ("Good morning, how can I help?", "low"),
    ("Your parcel arrives tomorrow at noon.", "high"),
    ("Press one.", "studio"),
    ("Thanks for waiting so long today.", "low"),
]


def greedy(speed=1.0):
    return SynthesisParams(top_k=1, seed=9, min_new_tokens=24, max_new_tokens=24, speed=speed)


class GpuLikeCosts(StepCosts):
    """Decode step costs fixed as a GPU's (a row is nearly free), so that every row rides."""

    def __init__(self) -> None:
        super().__init__({1: 0.010, 8: 0.011})

    def observe(self, rows: int, seconds: float) -> None:
        pass


def test_requests_arriving_together_run_as_one_batch_equal_to_solo(engine, voices,
                                                                   monkeypatch):
    monkeypatch.setattr(engine.batcher, "step_costs", GpuLikeCosts())
    items = [(t, v, greedy(speed=1.0 + 0.1 * i)) for i, (t, v) in enumerate(GREEDY)]
    expected = [solo(engine, voices, *it) for it in items]
    scheduler = Scheduler(max_queue=8, max_active=8, max_batch=4)
    steps, rows = engine.stats.steps, engine.stats.rows
    with scheduler._cond:  # submit all four before the loop admits any of them
        handles = [scheduler.submit(f"b{i}", engine, utterances(voices, *it))
                   for i, it in enumerate(items)]
    results = collect_all(handles)
    # Every forward pass served all four rows (prefill included).
    assert engine.stats.rows - rows == 4 * (engine.stats.steps - steps)
    for i, want in enumerate(expected):
        # One forward pass for four left-padded rows: equal within float tolerance.
        assert len(results[i]) == len(want)
        np.testing.assert_allclose(results[i], want, rtol=0, atol=1e-4, err_msg=f"row {i}")


def test_cancelling_a_batch_row_leaves_its_mates_exact(engine, voices):
    items = [(t, v, greedy()) for t, v in GREEDY[:3]]
    expected = [solo(engine, voices, *it) for it in items]
    scheduler = Scheduler(max_queue=8, max_active=8, max_batch=4)
    with scheduler._cond:
        handles = [scheduler.submit(f"c{i}", engine, utterances(voices, *it))
                   for i, it in enumerate(items)]
    victim = handles[1].chunks()
    next(victim)
    victim.close()
    results: dict[int, np.ndarray] = {}
    for i in (0, 2):
        collect(handles[i], results, i)
        np.testing.assert_allclose(results[i], expected[i], rtol=0, atol=1e-4)
    assert scheduler.batched_steps > 0


def test_a_full_batch_advances_the_rows_with_the_earliest_deadlines(engine, voices):
    """Four requests, room for two rows: the two latest deadlines wait; all stay exact."""
    items = [(t, v, greedy()) for t, v in GREEDY]
    expected = [solo(engine, voices, *it) for it in items]
    scheduler = Scheduler(max_queue=8, max_active=8, max_batch=2)
    steps, rows = engine.stats.steps, engine.stats.rows
    handles = [scheduler.submit(f"f{i}", engine, utterances(voices, *it))
               for i, it in enumerate(items)]
    results = collect_all(handles)
    assert engine.stats.rows - rows <= 2 * (engine.stats.steps - steps)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(results[i], want, rtol=0, atol=1e-4, err_msg=f"row {i}")


def test_decode_step_costs_are_measured_by_rows_and_refreshed_live(engine, voices):
    voice = next(iter(voices.values()))
    table = engine.batcher.measure_step_costs(voice, sizes=(1, 2, 4), steps=3)
    # The measured sizes are in the table (rows other tests stepped live may be there too).
    assert {1, 2, 4} <= set(table) and all(s > 0 for s in table.values())
    assert engine.batcher.step_costs(3) is not None  # interpolated
    before = engine.stats.steps
    scheduler = Scheduler(max_queue=8, max_active=8, max_batch=4)
    list(scheduler.submit("live", engine, utterances(voices, *GREEDY[2][:2], greedy()))
         .chunks())
    assert engine.stats.steps > before
    assert engine.batcher.step_costs(1) != table[1]  # refreshed by the live steps

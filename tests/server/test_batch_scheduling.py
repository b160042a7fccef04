"""Continuous batching in the scheduler with a fake batching engine: which streams advance
together, in deadline order, and how a newcomer joins a running batch at its next step."""

from __future__ import annotations

import threading
import time

import numpy as np

from voxline.engines.base import Batcher, Engine, EngineStream, SynthesisParams, Utterance
from voxline.scheduler import Scheduler

CHUNK = np.zeros(24000, dtype=np.float32)  # one second of audio


class FakeBatcher(Batcher):
    """Each 'decode step' takes `step_s`; a stream's chunk is due after `steps` steps."""

    def __init__(self, steps: int, step_s: float) -> None:
        self.steps, self.step_s = steps, step_s
        self.calls: list[tuple[list[str], bool]] = []  # (names advanced, returned chunks)
        self.stepping = threading.Event()  # set once a decode step has run

    def advance(self, streams, interrupt):
        for _ in range(self.steps):
            time.sleep(self.step_s)
            for s in streams:
                s.progress += 1
            self.stepping.set()
            if interrupt():
                break
        out = {}
        for s in streams:
            if s.progress >= self.steps:
                s.progress = 0
                s.left -= 1
                out[s] = CHUNK if s.left >= 0 else None
        self.calls.append(([s.name for s in streams], bool(out)))
        return out


class FakeStream(EngineStream):
    def __init__(self, batcher: FakeBatcher, name: str, chunks: int) -> None:
        self._batcher, self.name, self.left, self.progress = batcher, name, chunks, 0

    @property
    def batcher(self):
        return self._batcher

    def step(self):
        return self._batcher.advance([self], lambda: False).get(self)

    def close(self) -> None:
        pass


class BatchingEngine(Engine):
    name = "batching"

    def __init__(self, steps: int = 5, step_s: float = 0.002) -> None:
        self.batcher = FakeBatcher(steps, step_s)

    def stream(self, text, voice, language, params):
        raise NotImplementedError

    def open_stream(self, text, voice, language, params):
        name, chunks = text.split(":")
        return FakeStream(self.batcher, name, int(chunks))


def job(name: str, chunks: int) -> list[Utterance]:
    return [Utterance(f"{name}:{chunks}", {}, "en", SynthesisParams())]


def drain(handles) -> dict[int, int]:
    got: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i, h=h: got.__setitem__(
        i, len(list(h.chunks())))) for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return got


def test_a_full_batch_advances_the_earliest_deadlines_in_turn():
    engine = BatchingEngine()
    scheduler = Scheduler(max_active=8, max_batch=2)
    with scheduler._cond:  # all three admitted together
        handles = [scheduler.submit(n, engine, job(n, 4)) for n in "abc"]
    assert drain(handles) == {0: 4, 1: 4, 2: 4}
    served = {n: 0 for n in "abc"}
    for names, _ in engine.batcher.calls:
        assert len(names) <= 2
        for n in names:
            served[n] += 1
        # Deadline order: nobody gets two chunks ahead while another waits for audio.
        live = [served[n] for n in "abc" if served[n] < 5]
        assert max(live, default=0) - min(live, default=0) <= 1, engine.batcher.calls
    assert [len(n) for n, _ in engine.batcher.calls[:3]] == [2, 2, 2]


def test_a_newcomer_joins_a_running_batch_at_its_next_decode_step():
    engine = BatchingEngine(steps=1000, step_s=0.002)  # a chunk takes over 2 s
    scheduler = Scheduler(max_active=8, max_batch=4)
    first = scheduler.submit("a", engine, job("a", 1))
    reader = threading.Thread(target=lambda: list(first.chunks()))
    reader.start()
    assert engine.batcher.stepping.wait(5)  # "a" is mid-chunk
    second = scheduler.submit("b", engine, job("b", 1))
    assert drain([second]) == {0: 1}
    reader.join(10)
    calls = engine.batcher.calls
    # The running batch was cut short for the newcomer, which then advanced together with "a".
    assert calls[0] == (["a"], False)
    assert sorted(calls[1][0]) == ["a", "b"]


def test_max_batch_one_interleaves_one_stream_per_step():
    engine = BatchingEngine()
    scheduler = Scheduler(max_active=8, max_batch=1)
    with scheduler._cond:
        handles = [scheduler.submit(n, engine, job(n, 3)) for n in "ab"]
    assert drain(handles) == {0: 3, 1: 3}
    assert all(len(names) == 1 for names, _ in engine.batcher.calls)
    order = [names[0] for names, chunk in engine.batcher.calls if chunk]
    assert order[:4] == ["a", "b", "a", "b"]

"""The scheduler's policy on fake engines with scripted step costs and a fake clock: which
stream steps next, who is admitted, who rides a batched step. No timing of real runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voxline.engines.base import Batcher, Engine, EngineStream, SynthesisParams, Utterance
from voxline.scheduler import QueueFull, Scheduler, render_level
from voxline.scheduling.costs import StepCosts

RATE = 1000  # samples per second of the fake engines: a chunk of N samples is N ms


class Clock:
    """Time that moves only when a fake engine says a step took so long."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


class ScriptedStream(EngineStream):
    def __init__(self, engine: ScriptedEngine, name: str, chunks: int) -> None:
        self.engine, self.name, self.left = engine, name, chunks

    def step(self):
        if self.left == 0:
            return None
        self.left -= 1
        self.engine.clock.advance(self.engine.step_s)
        self.engine.steps.append(self.name)
        hook = self.engine.after_step.pop(len(self.engine.steps), None)
        if hook is not None:
            hook()
        return np.zeros(int(self.engine.chunk_s * RATE), dtype=np.float32)

    def close(self) -> None:
        pass


class ScriptedEngine(Engine):
    """Each step makes `chunk_s` of audio and costs `step_s` of fake time."""

    name = "scripted"
    sample_rate = RATE

    def __init__(self, clock: Clock, step_s: float, chunk_s: float = 1.0) -> None:
        self.clock, self.step_s, self.chunk_s = clock, step_s, chunk_s
        self.steps: list[str] = []
        self.after_step: dict[int, callable] = {}  # step number -> called after it

    def stream(self, text, voice, language, params):
        raise NotImplementedError

    def open_stream(self, text, voice, language, params):
        name, chunks = text.split(":")
        return ScriptedStream(self, name, int(chunks))


def job(name: str, chunks: int) -> list[Utterance]:
    return [Utterance(f"{name}:{chunks}", {}, "en", SynthesisParams())]


def read_all(handles) -> None:
    threads = [threading.Thread(target=lambda h=h: list(h.chunks())) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_a_newcomer_steps_before_streams_with_audio_in_hand():
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=0.1)
    scheduler = Scheduler(max_active=32, clock=clock)
    late: list = []
    # After the 6th step, "a" and "b" have seconds in hand; then "c" arrives.
    engine.after_step[6] = lambda: late.append(scheduler.submit("c", engine, job("c", 3)))
    with scheduler._cond:
        handles = [scheduler.submit(n, engine, job(n, 6)) for n in "ab"]
    read_all(handles)
    read_all(late)
    assert engine.steps[:2] == ["a", "b"]  # arrival order for first audio
    assert engine.steps[6] == "c"  # the newcomer's first chunk comes next
    assert late[0].job.first_chunk_at == pytest.approx(100.7)


def test_a_costly_next_chunk_starts_before_a_cheap_one_due_earlier():
    """Order by deadline minus the next chunk's measured cost, not by deadline alone."""
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=0.5, chunk_s=1.0)
    scheduler = Scheduler(max_active=32, clock=clock, target_load=1.0)
    scheduler.costs(engine).observe_step(0.5, 1.0)  # 0.5 s per second of audio
    with scheduler._cond:
        slow, quick = (scheduler.submit(n, engine, job(n, 1)) for n in ("slow", "quick"))
        # "slow" is due at 103.0 with a 4 s chunk next (2 s to make): start by 101.0;
        # "quick" is due at 102.0 with a 0.2 s chunk next (0.1 s): start by 101.9.
        for handle, due, chunk in ((slow, 3.0, 4.0), (quick, 2.0, 0.2)):
            handle.job.first_chunk_at, handle.job.audio_s = clock.now, due
            handle.job.last_chunk_s = chunk
    read_all([slow, quick])
    assert engine.steps == ["slow", "quick"]


def test_a_stream_about_to_run_dry_goes_before_a_newcomer():
    """A newcomer waits for a stream whose latest start comes before a first chunk would be
    done; a stream with time to spare waits for the newcomer."""
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=0.5, chunk_s=1.0)
    scheduler = Scheduler(max_active=32, clock=clock, target_load=1.0)
    scheduler.costs(engine).observe_step(0.5, 1.0)  # 0.5 s per second of audio
    scheduler.costs(engine).observe_first_chunk(1.0)  # a first chunk: 0.5 s to make
    with scheduler._cond:
        dry, spare, new = (scheduler.submit(n, engine, job(n, 1)) for n in ("dry", "spare",
                                                                             "new"))
        # "dry" runs out at 100.8 (start by 100.3: before a first chunk would be done, 100.5);
        # "spare" runs out at 103.0 (start by 102.5).
        for handle, due in ((dry, 0.8), (spare, 3.0)):
            handle.job.first_chunk_at, handle.job.audio_s = clock.now, due
            handle.job.last_chunk_s = 1.0
    read_all([dry, spare, new])
    assert engine.steps == ["dry", "new", "spare"]


def test_audio_its_reader_has_not_taken_yet_is_still_in_hand():
    """A chunk just made is audio in hand even before the request's reader takes it: the
    stream is not due at once, so a newcomer's first chunk still goes before its next one."""
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=0.1, chunk_s=2.0)
    scheduler = Scheduler(max_active=32, clock=clock, target_load=1.0)
    scheduler.costs(engine).observe_step(0.1, 2.0)
    scheduler.costs(engine).observe_first_chunk(2.0)
    late: list = []
    engine.after_step[1] = lambda: late.append(scheduler.submit("b", engine, job("b", 1)))
    with scheduler._cond:
        handles = [scheduler.submit("a", engine, job("a", 2), consumed=lambda: 0.0)]
    read_all(handles)
    read_all(late)
    assert engine.steps == ["a", "b", "a"]


def test_a_render_that_began_alone_and_ended_shared_is_not_counted():
    assert render_level(1, 1) == 1
    assert render_level(2, 2) == 2 and render_level(2, 1) == 2
    assert render_level(1, 2) is None  # every core, then half of them: neither level's pace


def calibrated(step_s: float, chunk_s: float = 1.0):
    """A scheduler whose engine pace is measured: one 4-chunk request run alone."""
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=step_s, chunk_s=chunk_s)
    scheduler = Scheduler(max_active=32, clock=clock, target_load=1.0, first_audio_s=1.0)
    read_all([scheduler.submit("w", engine, job("w", 4))])  # "w:4": 4 s of 3 chars
    return clock, engine, scheduler


def test_admission_refuses_at_once_with_the_seconds_until_a_stream_is_made():
    # 0.25 s per 1 s chunk: 4 s of audio a second, so four real-time streams fit.
    clock, engine, scheduler = calibrated(step_s=0.25)
    assert scheduler.capacity_streams == pytest.approx(4.0)
    text = job("x", 4)  # "x:4" is 3 characters: measured as 4 s of audio
    gate, holding = threading.Event(), threading.Event()
    engine.after_step[5] = lambda: holding.set() or gate.wait(10)  # time stands in step 5
    held = [scheduler.submit(f"r{i}", engine, text) for i in range(3)]
    holding.wait(5)  # 0.25 s on: three first chunks (1 s each) are due within 0.75 s
    held.append(scheduler.submit("r3", engine, text))  # 3 + 1 chunks within 1.0 s: fits
    with pytest.raises(QueueFull) as refused:  # 5 chunks within 1.0 s: it does not
        scheduler.submit("late", engine, text)
    # Played just in time, the four have made all their audio 4 s from now: room opens.
    assert refused.value.retry_after == 4
    assert scheduler.admissions == {"admitted": 5, "queued": 0, "refused": 1}
    gate.set()
    read_all(held)


def test_without_measurements_only_the_count_limits_apply():
    clock = Clock()
    engine = ScriptedEngine(clock, step_s=10.0)  # far slower than real time, unknown yet
    scheduler = Scheduler(max_active=2, max_queue=1, clock=clock)
    with scheduler._cond:
        handles = [scheduler.submit(n, engine, job(n, 1)) for n in "abc"]
        with pytest.raises(QueueFull):
            scheduler.submit("d", engine, job("d", 1))
    assert scheduler.admissions == {"admitted": 2, "queued": 1, "refused": 1}
    read_all(handles)


class CostedBatcher(Batcher):
    """One chunk per `advance`; a step with n rows costs `step_costs(n)` of fake time."""

    def __init__(self, clock: Clock, step_costs: StepCosts) -> None:
        self.clock, self.step_costs = clock, step_costs
        self.calls: list[list[str]] = []

    def advance(self, streams, interrupt):
        self.clock.advance(self.step_costs(len(streams)))
        self.calls.append(sorted(s.name for s in streams))
        out = {}
        for s in streams:
            s.left -= 1
            out[s] = np.zeros(RATE, dtype=np.float32) if s.left >= 0 else None
        return out


class CostedStream(EngineStream):
    steps_to_chunk = 1

    def __init__(self, batcher: CostedBatcher, name: str, chunks: int) -> None:
        self._batcher, self.name, self.left = batcher, name, chunks

    @property
    def batcher(self):
        return self._batcher

    def step(self):
        return self._batcher.advance([self], lambda: False).get(self)

    def close(self) -> None:
        pass


class BatchEngine(Engine):
    name = "costed"
    sample_rate = RATE

    def __init__(self, clock: Clock, step_costs: StepCosts) -> None:
        self.batcher = CostedBatcher(clock, step_costs)

    def stream(self, text, voice, language, params):
        raise NotImplementedError

    def open_stream(self, text, voice, language, params):
        name, chunks = text.split(":")
        return CostedStream(self.batcher, name, int(chunks))


def batch_run(step_costs: StepCosts) -> list[list[str]]:
    """"a" and "b" run with seconds in hand when newcomer "c" arrives: who rides with it?"""
    clock = Clock()
    engine = BatchEngine(clock, step_costs)
    scheduler = Scheduler(max_active=32, max_batch=8, clock=clock)
    with scheduler._cond:
        handles = [scheduler.submit(n, engine, job(n, 8)) for n in "ab"]
        for h in handles:  # each has 5 s of audio in hand
            h.job.first_chunk_at, h.job.audio_s, h.job.last_chunk_s = clock.now, 5.0, 1.0
        handles.append(scheduler.submit("c", engine, job("c", 2)))
    read_all(handles)
    return engine.batcher.calls


def test_gpu_like_costs_let_everyone_ride_with_the_newcomer():
    calls = batch_run(StepCosts({1: 0.05, 8: 0.052}))
    assert calls[0] == ["a", "b", "c"]


def test_cpu_like_costs_give_the_newcomer_its_first_chunk_alone():
    calls = batch_run(StepCosts({1: 0.2, 2: 0.3, 4: 0.5, 8: 0.9}))
    assert calls[0] == ["c"]
    assert calls[1] == ["a", "b", "c"]  # then all batched again: throughput


def test_target_load_zero_turns_admission_by_capacity_off():
    clock, engine, scheduler = calibrated(step_s=4.0)  # 4 s per 1 s chunk: 0.25 streams
    scheduler.target_load = 0
    handles = [scheduler.submit(f"r{i}", engine, job("x", 1)) for i in range(3)]
    assert scheduler.admissions["refused"] == 0
    read_all(handles)


def test_an_engine_slower_than_real_time_is_limited_by_count_only():
    """Below one real-time stream every stream is late whatever is refused."""
    clock, engine, scheduler = calibrated(step_s=2.0)  # 0.5 streams
    handles = [scheduler.submit(f"r{i}", engine, job("x", 1)) for i in range(3)]
    assert scheduler.admissions["refused"] == 0
    read_all(handles)

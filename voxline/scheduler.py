"""The synthesis scheduler: worker threads step every active request, most urgent first.

XTTS keeps per-call state on the shared model, so no two threads may run it at once. Instead of
serialising whole requests (caller 4 waits for callers 1-3 to finish), the scheduler holds each
request's own stream state (`EngineStream`) and computes one chunk at a time for the stream
whose next chunk must start first:

- a stream that has sent no audio yet is due at its arrival: first audio is the most urgent
  work, newcomers go in arrival order before every stream with audio in hand that can wait;
- a stream that has sent audio is due when that audio would run out at real-time playback
  (time of its first chunk + seconds of audio it was given), less its next chunk's measured
  cost (its latest start). It can wait for a newcomer unless its latest start comes before a
  typical first chunk would be done: then it goes first, as a gap in speech that has begun is
  worse than a later start. One comfortably ahead yields.

An engine that renders in parallel (`Engine.parallel_renders`, Piper) is stepped by that many
worker threads at once; others by one. Engines that batch (a stream with a `Batcher`, XTTS)
advance several streams per step (continuous batching, up to `max_batch` rows): which ones is
read from the measured cost of a step by rows (`voxline.scheduling.batching`), so newcomers
are not slowed by rows with audio in hand where a row is costly (a CPU), and everyone rides
where it is nearly free (a GPU).

Admission is by predicted lateness (`voxline.scheduling.admission`): a request that the
measured capacity cannot serve without making it or a running stream late is refused at once
(QueueFull with the seconds until it would fit). Beyond that, `max_active` caps streams at once
(more wait in a bounded FIFO of `max_queue`). Cancellation and errors are per request (an
engine failure inside a shared forward pass fails the requests in it).
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from voxline.engines.base import Engine, EngineStream, TimedChunk, Utterance
from voxline.engines.word_estimate import EstimatedWordsStream
from voxline.request_context import NO_REQUEST, REQUEST_ID
from voxline.scheduling import admission
from voxline.scheduling.batching import RowNeed, choose_rows
from voxline.scheduling.costs import RenderCosts
from voxline.scheduling.jobs import Cancelled, Job, QueueFull, QueueTimeout, SynthesisError

__all__ = ["Cancelled", "Job", "JobHandle", "QueueFull", "QueueTimeout", "Scheduler",
           "SynthesisError"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_END = object()


class JobHandle:
    """What a request thread holds: waits for admission, reads chunks, cancels on close."""

    def __init__(self, scheduler: Scheduler, job: Job) -> None:
        self._scheduler = scheduler
        self.job = job

    def wait_admitted(self, timeout_s: float) -> None:
        """Block until the job is active; raise QueueTimeout or Cancelled and leave the queue."""
        deadline = time.monotonic() + timeout_s
        while not self.job.admitted.wait(0.05):
            if self.job.cancelled():
                self.close()
                raise Cancelled(self.job.request_id)
            if time.monotonic() > deadline:
                self.close()
                raise QueueTimeout(self._scheduler.retry_after())

    def chunks(self) -> Iterator[np.ndarray | TimedChunk]:
        """The request's audio as the loop computes it; raises SynthesisError on failure and
        Cancelled when the loop dropped the job for a client gone (never a clean short end)."""
        for _sentence, chunk in self.timed_chunks():
            yield chunk

    def timed_chunks(self) -> Iterator[tuple[int, np.ndarray | TimedChunk]]:
        """As `chunks`, each with the index of the sentence (utterance) it belongs to."""
        try:
            while True:
                item = self.job.out.get()
                if item is _END:
                    return
                if isinstance(item, Cancelled):
                    raise item
                if isinstance(item, BaseException):
                    raise SynthesisError(str(item)) from item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop this request's synthesis (idempotent): the loop drops it at its next turn."""
        self.job.cancel.set()
        self._scheduler._wake()


class Scheduler:
    """Owns the engines' models: worker threads step the active requests in urgency order."""

    def __init__(self, max_queue: int = 16, wait_timeout_s: float = 120.0,
                 max_active: int = 8, max_batch: int = 1, max_ahead_s: float = 10.0,
                 target_load: float = 0.85, first_audio_s: float = 1.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_queue = max_queue
        self.max_ahead_s = max_ahead_s
        self.max_active = max_active
        self.max_batch = max_batch
        self.wait_timeout_s = wait_timeout_s
        self.target_load = target_load
        # Admission allows a new stream this long for its first chunk (its playback starts
        # then); running streams must meet their deadlines meanwhile.
        self.first_audio_s = first_audio_s
        self.clock = clock
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._tasks: deque[tuple[Callable[[], Any], queue.Queue]] = deque()
        self._numbers = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stopped = False  # `stop`: workers end once no work is left
        self._costs: dict[Engine, RenderCosts] = {}
        self._renders: dict[Engine, int] = {}  # steps in progress per engine
        # Admission decisions so far, by decision: /metrics voxline_admissions_total.
        self.admissions = {"admitted": 0, "queued": 0, "refused": 0}
        self.batched_steps = 0  # scheduler steps that advanced more than one stream
        self._arrivals = 0  # submissions so far: a running batch regroups when it changes
        # Moving estimate of the time between request completions while busy, for the
        # Retry-After of a full wait queue.
        self._per_request_s = 1.0
        self._last_mark: float | None = None

    @property
    def depth(self) -> int:
        """Requests waiting for a slot (not counting active ones)."""
        with self._cond:
            return len(self._pending)

    @property
    def active(self) -> int:
        with self._cond:
            return len(self._active)

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._active or self._tasks)

    def costs(self, engine: Engine) -> RenderCosts:
        """The measured pace of `engine` (created at its first use)."""
        with self._cond:
            if engine not in self._costs:
                self._costs[engine] = RenderCosts(_parallel(engine))
            return self._costs[engine]

    @property
    def capacity_streams(self) -> float:
        """Real-time streams the engines sustain at `target_load` of their measured output
        (0 before anything was measured): /metrics voxline_capacity_streams."""
        with self._cond:
            rates = [c.audio_rate() for c in self._costs.values()]
        return sum(r for r in rates if r is not None) * self.target_load

    def retry_after(self) -> int:
        """Seconds until a request arriving now would get a slot: its queue position times
        the measured time per request, at least 1. The position counts the jobs ahead of it
        beyond the free slots, so it is the same whether or not the loop has yet moved the
        waiting jobs into free slots (counting all waiting jobs said 5 s where 4 were meant)."""
        with self._cond:
            position = max(0, len(self._pending) + len(self._active) - self.max_active + 1)
            return max(1, math.ceil(position * self._per_request_s))

    def _mark_completion(self, now: float) -> None:
        """Update the time-per-request estimate when a job ends naturally (under the lock)."""
        if self._last_mark is not None:
            self._per_request_s = 0.7 * self._per_request_s + 0.3 * (now - self._last_mark)
        self._last_mark = now if self._active or self._pending else None

    def submit(self, request_id: str, engine: Engine, sentences: list[Utterance],
               client_gone: Callable[[], bool] = lambda: False,
               consumed: Callable[[], float] | None = None) -> JobHandle:
        """Queue a request (its sentences, in order); raise QueueFull when it cannot be
        served in time or there is no room.

        `consumed` reports the seconds of audio the client has taken: the job's deadline
        follows it, and the job pauses while it is more than `max_ahead_s` ahead."""
        costs = self.costs(engine)
        job = Job(request_id, engine, list(sentences), client_gone, consumed,
                  number=next(self._numbers), arrival=self.clock())
        with self._cond:
            self._refuse_if_stopped()
            self._admit_or_refuse(job, costs)
            self._arrivals += 1
            if self._last_mark is None:
                self._last_mark = time.monotonic()
            self._ensure_threads(_parallel(engine))
            self._cond.notify_all()
        return JobHandle(self, job)

    def _admit_or_refuse(self, job: Job, costs: RenderCosts) -> None:
        """Refuse a job that would make itself or others late, or find no room; otherwise
        put it in the wait queue (the loop admits it at once while under `max_active`)."""
        capacity = admission.capacity_streams(costs.audio_rate(), self.target_load)
        # Below one real-time stream every stream is late whatever is refused (XTTS on a
        # CPU): then, and with target_load 0, only the count limits apply.
        if capacity is not None and capacity >= 1 and self.target_load > 0:
            now = self.clock()
            # A job whose client has gone is dropped at the loop's next turn: it needs nothing.
            running = [j.need(costs, now, self.first_audio_s)
                       for j in (*self._active, *self._pending)
                       if j.engine is job.engine and not j.cancelled()]
            newcomer = job.need(costs, now, self.first_audio_s)
            if not admission.fits(running, newcomer, capacity):
                self.admissions["refused"] += 1
                wait = admission.retry_after(running, newcomer, capacity)
                logger.info("[%s] refused: %d streams would not keep up (capacity %.1f); "
                            "retry after %d s", job.request_id, len(running) + 1, capacity,
                            wait)
                raise QueueFull(wait)
        if len(self._active) + len(self._pending) >= self.max_active + self.max_queue:
            self.admissions["refused"] += 1
            raise QueueFull(self.retry_after())
        queued = len(self._active) + len(self._pending) >= self.max_active
        self.admissions["queued" if queued else "admitted"] += 1
        self._pending.append(job)

    def run(self, request_id: str, fn: Callable[[], T]) -> T:
        """Run `fn` on a worker thread while no step runs (voice cloning, warm-up) and
        return its result."""
        result: queue.Queue = queue.Queue(maxsize=1)
        with self._cond:
            self._refuse_if_stopped()
            self._tasks.append((fn, result))
            self._ensure_threads(1)
            self._cond.notify_all()
        ok, value = result.get()
        if not ok:
            raise value
        return value

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker threads once the work in hand is done (an app torn down inside a
        longer-lived process: each idle worker otherwise wakes twice a second for good)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _refuse_if_stopped(self) -> None:
        if self._stopped:
            raise RuntimeError("the scheduler was stopped")

    def _ensure_threads(self, count: int) -> None:
        """Start worker threads up to `count` (under the lock)."""
        while len(self._threads) < count:
            thread = threading.Thread(target=self._loop, name="voxline-scheduler", daemon=True)
            self._threads.append(thread)
            thread.start()

    # The workers --------------------------------------------------------------------------

    def _loop(self) -> None:
        while self._turn():
            pass

    def _turn(self) -> bool:
        """One turn of a worker's loop; False once stopped with no work left. Its own frame
        on purpose: the jobs it stepped must not stay referenced from the loop while it waits
        (they hold their requests' encoders; kept alive in this daemon thread at interpreter
        exit, soxr's nanobind objects were reported leaked)."""
        task, claimed = self._next_work()
        if task is not None:
            REQUEST_ID.set(NO_REQUEST)
            self._run_task(*task)
            self._wake()
            return True
        if not claimed:
            return False
        try:
            self._step(claimed)
        finally:
            self._release(claimed)
        return True

    def _next_work(self) -> tuple[tuple | None, list[Job]]:
        """Wait for work; admit waiting jobs; return a task (once no step runs), or the jobs
        this worker steps next, most urgent first; nothing once stopped and idle."""
        with self._cond:
            while True:
                self._drop_cancelled()
                self._admit()
                if self._stopped and not (self._tasks or self._active or self._pending):
                    return None, []
                if self._tasks:
                    if not any(self._renders.values()):
                        return self._tasks.popleft(), []
                else:
                    claimed = self._claim()
                    if claimed:
                        return None, claimed
                # Paused jobs resume when their clients read: look again shortly.
                self._cond.wait(0.02 if self._active else 0.5)

    def _claim(self) -> list[Job]:
        """The most urgent runnable job whose engine has a free render, with (for an engine
        rendering one step at a time) all its other runnable jobs as batch candidates."""
        ready = [j for j in self._active if j.runnable(self.max_ahead_s)
                 and self._renders.get(j.engine, 0) < _parallel(j.engine)]
        if not ready:
            return []
        now = self.clock()
        newcomer_costs = {e: self._newcomer_cost(e) for e in {j.engine for j in ready}}
        ready.sort(key=lambda j: self._urgency(j, now, newcomer_costs[j.engine]))
        engine = ready[0].engine
        # Batch candidates: enough for a full batch after some of them end or sit out.
        claimed = [ready[0]] if _parallel(engine) > 1 else [
            j for j in ready if j.engine is engine][:2 * self.max_batch]
        self._renders[engine] = self._renders.get(engine, 0) + 1
        for job in claimed:
            job.in_flight = True
        return claimed

    def _newcomer_cost(self, engine: Engine) -> float:
        """Predicted seconds of a typical first chunk of `engine` (0 while unmeasured)."""
        costs = self._costs[engine]
        return costs.step_cost(costs.first_chunk_s())

    def _urgency(self, job: Job, now: float, newcomer_cost: float) -> tuple:
        """Sort key: streams with audio that a newcomer's first chunk (`newcomer_cost`) would
        make late (by latest start), then newcomers (by arrival), then the other streams (by
        latest start)."""
        if job.first_chunk_at is None:
            return (1, job.arrival, job.number)
        start = job.latest_start(self._costs[job.engine])
        return (0 if start <= now + newcomer_cost else 2, start, job.number)

    def _release(self, claimed: list[Job]) -> None:
        with self._cond:
            engine = claimed[0].engine
            self._renders[engine] -= 1
            for job in claimed:
                job.in_flight = False
            self._cond.notify_all()

    def _admit(self) -> None:
        """Move waiting jobs into the active set, oldest first."""
        while self._pending and len(self._active) < self.max_active:
            job = self._pending.popleft()
            self._active.append(job)
            job.admitted.set()

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._pending if j.cancel.is_set()]:
            self._pending.remove(job)
        for job in [j for j in self._active if not j.in_flight and j.cancelled()]:
            logger.info("[%s] client went away; stopping synthesis", job.request_id)
            # Always end the job's queue: its request thread may be blocked reading it.
            self._finish(job, Cancelled(job.request_id))

    def _finish(self, job: Job, outcome: object) -> None:
        """Close the job's stream, drop it from the active set, end its queue with `outcome`."""
        if job.stream is not None:
            job.stream.close()
            job.stream = None
        if job in self._active:
            self._active.remove(job)
        job.out.put(outcome)

    def _step(self, claimed: list[Job]) -> None:
        """Advance the most urgent claimed job, together with the batch mates its engine's
        measured step costs let ride."""
        group = self._group(claimed)
        if not group:
            return
        costs = self._costs[group[0].engine]
        batcher = group[0].stream.batcher
        if batcher is None:
            self._run_alone(group[0], costs)
            return
        arrivals = self._arrivals

        def interrupt() -> bool:  # regroup at the next decode step: a newcomer may ride
            return self._arrivals != arrivals or any(j.cancelled() for j in group)

        streams = {j.stream: j for j in group}
        started = self.clock()
        try:
            chunks = batcher.advance(list(streams), interrupt)
        except Exception as exc:
            logger.exception("synthesis failed for %s", ", ".join(j.request_id for j in group))
            with self._cond:
                for job in group:
                    self._finish(job, exc)
            return
        if len(group) > 1:
            self.batched_steps += 1
        audio = sum(len(c) for c in chunks.values() if c is not None)
        costs.observe_step(self.clock() - started, audio / group[0].engine.sample_rate)
        for stream, chunk in chunks.items():
            self._deliver(streams[stream], chunk)

    def _group(self, claimed: list[Job]) -> list[Job]:
        """The first claimed job with a stream open, then the batch mates that ride with it."""
        group: list[Job] = []
        for job in claimed:
            if not self._ensure_stream(job):
                continue
            if not group:
                group.append(job)
                if job.stream.batcher is None:
                    return group  # an engine that cannot batch: this job alone
            elif job.stream.batcher is group[0].stream.batcher:
                group.append(job)
        if len(group) < 2:
            return group
        batcher = group[0].stream.batcher
        step_cost = getattr(batcher, "step_costs", None) or (lambda rows: None)
        now = self.clock()
        needs = [RowNeed(None if j.first_chunk_at is None else j.deadline() - now,
                         getattr(j.stream, "steps_to_chunk", 1)) for j in group]
        return [group[i] for i in choose_rows(needs, step_cost, self.max_batch)]

    def _ensure_stream(self, job: Job) -> bool:
        """Open the job's next sentence if it has none; False if the job ended or failed."""
        if job.stream is not None:
            return True
        REQUEST_ID.set(job.request_id)  # engine log lines name the request they work for
        try:
            if not job.sentences:
                with self._cond:
                    self._finish(job, _END)
                    self._mark_completion(time.monotonic())
                return False
            sentence = job.sentences[0]
            job.stream = _with_words(job.engine, sentence)
            job.sentences.pop(0)
            job.sentence += 1
            job.sentence_chars, job.sentence_audio_s = len(sentence.text), 0.0
        except Exception as exc:
            logger.exception("[%s] synthesis failed", job.request_id)
            with self._cond:
                self._finish(job, exc)
            return False
        return True

    def _run_alone(self, job: Job, costs: RenderCosts) -> None:
        REQUEST_ID.set(job.request_id)
        with self._cond:
            at_start = self._renders.get(job.engine, 1)
        started = self.clock()
        try:
            chunk = job.stream.step()
        except Exception as exc:
            logger.exception("[%s] synthesis failed", job.request_id)
            with self._cond:
                self._finish(job, exc)
            return
        if chunk is not None:
            with self._cond:
                level = render_level(at_start, self._renders.get(job.engine, 1))
            if level is not None:
                costs.observe_step(self.clock() - started,
                                   len(chunk) / job.engine.sample_rate, level)
        self._deliver(job, chunk)

    def _deliver(self, job: Job, chunk: np.ndarray | TimedChunk | None) -> None:
        """Send a chunk to the job's request; None ends its sentence (the next one opens at
        its next turn, or the job ends)."""
        if chunk is None:
            self._costs[job.engine].observe_text(job.sentence_chars, job.sentence_audio_s)
            job.stream.close()
            job.stream = None
            if not job.sentences:
                with self._cond:
                    self._finish(job, _END)
                    self._mark_completion(time.monotonic())
            return
        seconds = len(chunk) / job.engine.sample_rate
        if job.first_chunk_at is None:
            job.first_chunk_at = self.clock()
            self._costs[job.engine].observe_first_chunk(seconds)
        job.audio_s += seconds
        job.sentence_audio_s += seconds
        job.last_chunk_s = seconds
        job.out.put((job.sentence, chunk))

    @staticmethod
    def _run_task(fn: Callable[[], Any], result: queue.Queue) -> None:
        try:
            result.put((True, fn()))
        except Exception as exc:
            result.put((False, exc))


def render_level(at_start: int, at_end: int) -> int | None:
    """The level of parallel renders a render's pace stands for, from the renders running
    when it started and ended (itself included); None when it began alone and ended shared:
    its pace was neither level's (Piper gives a render alone every core's threads)."""
    if at_start <= 1 < at_end:
        return None
    return max(at_start, at_end)


def _parallel(engine: Engine) -> int:
    """Steps of `engine` that may run at once."""
    return max(1, engine.parallel_renders)


def _fields(utterance: Utterance) -> tuple:
    return utterance.text, utterance.voice, utterance.language, utterance.params


def _with_words(engine: Engine, utterance: Utterance) -> EngineStream:
    """The utterance's stream, its words estimated at its end when the engine does not time
    them itself (a stream that batches times its own: XTTS estimates in its final chunk)."""
    stream = engine.open_stream(*_fields(utterance))
    if stream.batcher is not None:
        return stream
    return EstimatedWordsStream(stream, utterance.text, utterance.language)

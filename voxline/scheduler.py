"""The synthesis scheduler: one thread owns the model and steps every active request in turn.

XTTS keeps per-call state on the shared model, so no two threads may touch it. Instead of
serialising whole requests (caller 4 waits for callers 1-3 to finish), the scheduler's loop
holds each request's own stream state (`EngineStream`) and computes one chunk at a time for the
stream whose playback deadline comes first:

- a stream that has sent no audio yet has its arrival time as deadline, so new callers get
  their first chunk quickly, in arrival order;
- a stream that has sent audio is due when that audio would run out at real-time playback
  (time of its first chunk + seconds of audio sent); one comfortably ahead yields.

Engines that batch (a stream with a `Batcher`, XTTS) advance the first job in deadline order
together with the next ones in that order, up to `max_batch` rows (continuous batching): a
request joins the running batch at any decode step (a new arrival interrupts the batch when it
has room) and leaves it at any step; when more jobs are runnable than `max_batch`, those whose
deadlines come last wait. `max_batch=1` is plain interleaving, one chunk at a time. Requests
beyond `max_active` wait in a bounded FIFO; beyond `max_queue` waiting, `submit` refuses at
once (503). Cancellation and errors are per request (an engine failure inside a shared forward
pass fails the requests in it).
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
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from voxline.engines.base import Engine, EngineStream, TimedChunk, Utterance
from voxline.engines.word_estimate import EstimatedWordsStream
from voxline.request_context import NO_REQUEST, REQUEST_ID

logger = logging.getLogger(__name__)
T = TypeVar("T")
_END = object()


class QueueFull(Exception):
    """No room in the wait queue; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the synthesis queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class QueueTimeout(QueueFull):
    """Waited longer than the configured limit for a synthesis slot."""


class Cancelled(Exception):
    """The client went away before synthesis started."""


class SynthesisError(RuntimeError):
    """The engine failed on this request (the scheduler goes on with the others)."""


@dataclass(eq=False)
class Job:
    """One request inside the scheduler: its sentences, its stream, its playback clock."""

    request_id: str
    engine: Engine
    sentences: list[Utterance]
    client_gone: Callable[[], bool]
    # Seconds of this job's audio its client has taken; None: whatever was produced.
    consumed: Callable[[], float] | None = None
    number: int = 0
    arrival: float = field(default_factory=time.monotonic)
    out: queue.Queue = field(default_factory=queue.Queue)
    admitted: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    stream: EngineStream | None = None
    sentence: int = -1  # index of the sentence being synthesised
    first_chunk_at: float | None = None
    audio_s: float = 0.0

    def consumed_s(self) -> float:
        return self.audio_s if self.consumed is None else self.consumed()

    def deadline(self) -> float:
        """When this stream's listener runs out of audio (its arrival, before any audio):
        counted from what the client has taken, not from what was produced."""
        if self.first_chunk_at is None:
            return self.arrival
        return self.first_chunk_at + self.consumed_s()

    def cancelled(self) -> bool:
        return self.cancel.is_set() or self.client_gone()

    def runnable(self, max_ahead_s: float) -> bool:
        """Whether the loop may step this job now: not cancelled, and not so far ahead of its
        client that its slot should go to others until the client reads."""
        return not self.cancel.is_set() and self.audio_s - self.consumed_s() <= max_ahead_s


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
    """Owns exclusive use of one engine from a single loop thread."""

    def __init__(self, max_queue: int = 16, wait_timeout_s: float = 120.0,
                 max_active: int = 8, max_batch: int = 1, max_ahead_s: float = 10.0) -> None:
        self.max_queue = max_queue
        self.max_ahead_s = max_ahead_s
        self.max_active = max_active
        self.max_batch = max_batch
        self.wait_timeout_s = wait_timeout_s
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._tasks: deque[tuple[Callable[[], Any], queue.Queue]] = deque()
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None
        self.batched_steps = 0  # scheduler steps that advanced more than one stream
        self._arrivals = 0  # submissions so far: a running batch regroups when it changes
        self._seen_arrivals = 0  # submissions when the loop last chose what to step
        # Moving estimate of the time between request completions while busy (the model's
        # real pace under load, batching and interleaving included), for Retry-After.
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

    def retry_after(self) -> int:
        """Seconds until a request arriving now would get a slot: its queue position times
        the measured time per request, at least 1."""
        with self._cond:
            position = len(self._pending) + max(0, len(self._active) - self.max_active + 1)
            return max(1, math.ceil(position * self._per_request_s))

    def _mark_completion(self, now: float) -> None:
        """Update the time-per-request estimate when a job ends naturally (under the lock)."""
        if self._last_mark is not None:
            self._per_request_s = 0.7 * self._per_request_s + 0.3 * (now - self._last_mark)
        self._last_mark = now if self._active or self._pending else None

    def submit(self, request_id: str, engine: Engine, sentences: list[Utterance],
               client_gone: Callable[[], bool] = lambda: False,
               consumed: Callable[[], float] | None = None) -> JobHandle:
        """Queue a request (its sentences, in order); raise QueueFull when there is no room.

        `consumed` reports the seconds of audio the client has taken: the job's deadline
        follows it, and the job pauses while it is more than `max_ahead_s` ahead."""
        job = Job(request_id, engine, list(sentences), client_gone, consumed,
                  number=next(self._numbers))
        with self._cond:
            # Capacity is the active slots plus the queue, however far the loop has admitted.
            if len(self._active) + len(self._pending) >= self.max_active + self.max_queue:
                raise QueueFull(self.retry_after())
            self._pending.append(job)
            self._arrivals += 1
            if self._last_mark is None:
                self._last_mark = time.monotonic()
            self._ensure_thread()
            self._cond.notify_all()
        return JobHandle(self, job)

    def run(self, request_id: str, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop thread between steps (voice cloning, warm-up) and return it."""
        result: queue.Queue = queue.Queue(maxsize=1)
        with self._cond:
            self._tasks.append((fn, result))
            self._ensure_thread()
            self._cond.notify_all()
        ok, value = result.get()
        if not ok:
            raise value
        return value

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="voxline-scheduler",
                                            daemon=True)
            self._thread.start()

    # The loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._turn()

    def _turn(self) -> None:
        """One turn of the loop. Its own frame on purpose: the jobs it stepped must not stay
        referenced from the loop while it waits (they hold their requests' encoders; kept alive
        in this daemon thread at interpreter exit, soxr's nanobind objects were reported leaked)."""
        task, ordered = self._next_work()
        if task is not None:
            REQUEST_ID.set(NO_REQUEST)
            self._run_task(*task)
        elif ordered:
            self._step(ordered)

    def _next_work(self) -> tuple[tuple | None, list[Job]]:
        """Wait for work; admit waiting jobs; return a task, or the runnable jobs in deadline
        order."""
        with self._cond:
            while True:
                self._drop_cancelled()
                self._admit()
                if self._tasks:
                    return self._tasks.popleft(), []
                ready = [j for j in self._active if j.runnable(self.max_ahead_s)]
                if ready:
                    self._seen_arrivals = self._arrivals  # later ones may join the next step
                    return None, sorted(ready, key=lambda j: (j.deadline(), j.number))
                # Paused jobs resume when their clients read: look again shortly.
                self._cond.wait(0.02 if self._active else 0.5)

    def _admit(self) -> None:
        """Move waiting jobs into the active set, oldest first."""
        while self._pending and len(self._active) < self.max_active:
            job = self._pending.popleft()
            self._active.append(job)
            job.admitted.set()

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._pending if j.cancel.is_set()]:
            self._pending.remove(job)
        for job in [j for j in self._active if j.cancelled()]:
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

    def _step(self, ordered: list[Job]) -> None:
        """Advance the job whose deadline comes first, together with the next jobs in deadline
        order that its engine can batch with it (up to `max_batch` rows)."""
        group = self._group(ordered)
        if not group:
            return
        batcher = group[0].stream.batcher
        if batcher is None:
            self._run_alone(group[0])
            return
        arrivals = self._seen_arrivals
        room = len(group) < self.max_batch

        def interrupt() -> bool:  # regroup at the next decode step: a newcomer may join
            return (room and self._arrivals != arrivals) or any(j.cancelled() for j in group)

        streams = {j.stream: j for j in group}
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
        for stream, chunk in chunks.items():
            self._deliver(streams[stream], chunk)

    def _group(self, ordered: list[Job]) -> list[Job]:
        """The first job with a stream open, then its batch mates in deadline order."""
        group: list[Job] = []
        for job in ordered:
            if group and (len(group) >= self.max_batch or job.engine is not group[0].engine):
                continue
            if not self._ensure_stream(job):
                continue
            if not group or (job.stream.batcher is not None
                             and job.stream.batcher is group[0].stream.batcher):
                group.append(job)
            if len(group) == 1 and job.stream.batcher is None:
                break  # an engine that cannot batch: this job alone
        return group

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
            job.stream = _with_words(job.engine, job.sentences.pop(0))
            job.sentence += 1
        except Exception as exc:
            logger.exception("[%s] synthesis failed", job.request_id)
            with self._cond:
                self._finish(job, exc)
            return False
        return True

    def _run_alone(self, job: Job) -> None:
        REQUEST_ID.set(job.request_id)
        try:
            chunk = job.stream.step()
        except Exception as exc:
            logger.exception("[%s] synthesis failed", job.request_id)
            with self._cond:
                self._finish(job, exc)
            return
        self._deliver(job, chunk)

    def _deliver(self, job: Job, chunk: np.ndarray | TimedChunk | None) -> None:
        """Send a chunk to the job's request; None ends its sentence (the next one opens at
        its next turn, or the job ends)."""
        if chunk is None:
            job.stream.close()
            job.stream = None
            if not job.sentences:
                with self._cond:
                    self._finish(job, _END)
                    self._mark_completion(time.monotonic())
            return
        if job.first_chunk_at is None:
            job.first_chunk_at = time.monotonic()
        job.audio_s += len(chunk) / job.engine.sample_rate
        job.out.put((job.sentence, chunk))

    @staticmethod
    def _run_task(fn: Callable[[], Any], result: queue.Queue) -> None:
        try:
            result.put((True, fn()))
        except Exception as exc:
            result.put((False, exc))


def _fields(utterance: Utterance) -> tuple:
    return utterance.text, utterance.voice, utterance.language, utterance.params


def _with_words(engine: Engine, utterance: Utterance) -> EngineStream:
    """The utterance's stream, its words estimated at its end when the engine does not time
    them itself (a stream that batches times its own: XTTS estimates in its final chunk)."""
    stream = engine.open_stream(*_fields(utterance))
    if stream.batcher is not None:
        return stream
    return EstimatedWordsStream(stream, utterance.text, utterance.language)

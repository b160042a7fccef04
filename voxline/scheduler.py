"""The synthesis scheduler: one thread owns the model and steps every active request in turn.

XTTS keeps per-call state on the shared model, so no two threads may touch it. Instead of
serialising whole requests (caller 4 waits for callers 1-3 to finish), the scheduler's loop
holds each request's own stream state (`EngineStream`) and computes one chunk at a time for the
stream whose playback deadline comes first:

- a stream that has sent no audio yet has its arrival time as deadline, so new callers get
  their first chunk quickly, in arrival order;
- a stream that has sent audio is due when that audio would run out at real-time playback
  (time of its first chunk + seconds of audio sent); one comfortably ahead yields.

Requests admitted together whose engine allows it (`Engine.batch_key`) start as one lockstep
batch of up to `max_batch` rows: one forward pass serves them all, and each row's chunk goes to
its own request. Requests beyond `max_active` wait in a bounded FIFO; beyond `max_queue`
waiting, `submit` refuses at once (503). Cancellation and errors are per request.
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

from voxline.engines.base import Engine, EngineStream, Utterance
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
    batch_key: object = None  # equal keys may start their first sentences as one batch
    started: bool = False  # its first sentence has been opened
    not_before: float = 0.0  # a batchable job waits this long for mates to arrive
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

    def paused(self, max_ahead_s: float) -> bool:
        """Too far ahead of its client: its slot goes to others until the client reads."""
        return self.audio_s - self.consumed_s() > max_ahead_s

    def cancelled(self) -> bool:
        return self.cancel.is_set() or self.client_gone()


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

    def chunks(self) -> Iterator[np.ndarray]:
        """The request's audio as the loop computes it; raises SynthesisError on failure and
        Cancelled when the loop dropped the job for a client gone (never a clean short end)."""
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
                 max_active: int = 8, max_batch: int = 1, batch_window_s: float = 0.02,
                 max_ahead_s: float = 10.0) -> None:
        self.max_queue = max_queue
        self.max_ahead_s = max_ahead_s
        self.max_active = max_active
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.wait_timeout_s = wait_timeout_s
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._tasks: deque[tuple[Callable[[], Any], queue.Queue]] = deque()
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None
        self.batches_opened = 0  # lockstep batches started (for tests, metrics and logs)
        # Moving estimate of the time between request completions while busy (the model's
        # real pace under load, interleaving included), for Retry-After.
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
            task, job = self._next_work()
            if task is not None:
                REQUEST_ID.set(NO_REQUEST)
                self._run_task(*task)
            elif job is not None:
                self._step(job)

    def _next_work(self) -> tuple[tuple | None, Job | None]:
        """Wait for work; admit waiting jobs; return a task, or the job to step next."""
        with self._cond:
            while True:
                self._drop_cancelled()
                self._admit()
                if self._tasks:
                    return self._tasks.popleft(), None
                now = time.monotonic()
                ready = [j for j in self._active if j.started or j.not_before <= now]
                runnable = [j for j in ready if not j.paused(self.max_ahead_s)]
                if runnable:
                    return None, min(runnable, key=lambda j: (j.deadline(), j.number))
                waits = [j.not_before - now for j in self._active if j.not_before > now]
                # Paused jobs resume when their clients read: look again shortly.
                self._cond.wait(min(waits, default=0.02 if ready else 0.5))

    def _admit(self) -> None:
        """Move waiting jobs into the active set. A job that could share a batch waits a few
        milliseconds (`batch_window_s`) for requests arriving with it."""
        while self._pending and len(self._active) < self.max_active:
            job = self._pending.popleft()
            self._active.append(job)
            job.admitted.set()
            if self.max_batch > 1 and job.sentences:
                job.batch_key = job.engine.batch_key(job.sentences[0].params)
                if job.batch_key is not None:
                    job.not_before = job.arrival + self.batch_window_s

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

    def _step(self, job: Job) -> None:
        """Compute one chunk of `job` (opening its next sentence when needed); deliver the
        chunks a batch step made for the job's batch mates too."""
        self._advance(job)
        with self._cond:
            others = [j for j in self._active if j is not job and j.stream and j.stream.ready()]
        for other in others:
            self._advance(other)

    def _advance(self, job: Job) -> None:
        REQUEST_ID.set(job.request_id)  # engine log lines name the request they work for
        try:
            chunk = None
            while chunk is None:
                if job.stream is None:
                    if not job.sentences:
                        with self._cond:
                            self._finish(job, _END)
                            self._mark_completion(time.monotonic())
                        return
                    self._open(job)
                chunk = job.stream.step()
                if chunk is None:
                    job.stream.close()
                    job.stream = None
        except Exception as exc:
            logger.exception("[%s] synthesis failed", job.request_id)
            with self._cond:
                self._finish(job, exc)
            return
        if job.first_chunk_at is None:
            job.first_chunk_at = time.monotonic()
        job.audio_s += len(chunk) / job.engine.sample_rate
        job.out.put(chunk)

    def _open(self, job: Job) -> None:
        """Open the job's next sentence; a first sentence starts a batch with every active job
        that has not started yet and has the same batch key."""
        mates = self._claim_mates(job)
        if len(mates) < 2:
            job.stream = job.engine.open_stream(*_fields(job.sentences.pop(0)))
            return
        try:
            rows = job.engine.open_batch([m.sentences[0] for m in mates])
        except Exception:
            # One bad sentence must not fail its mates: each opens alone (and fails alone).
            for mate in mates:
                mate.started = False
            job.started = True
            job.stream = job.engine.open_stream(*_fields(job.sentences.pop(0)))
            return
        for mate, row in zip(mates, rows, strict=True):
            mate.sentences.pop(0)
            mate.stream = row
        self.batches_opened += 1
        logger.info("batch of %d: %s", len(mates), ", ".join(m.request_id for m in mates))

    def _claim_mates(self, job: Job) -> list[Job]:
        with self._cond:
            first = not job.started
            job.started = True
            if not first or job.batch_key is None:
                return [job]
            mates = [job] + [
                m for m in self._active
                if m is not job and not m.started and m.engine is job.engine
                and m.batch_key == job.batch_key and not m.cancelled()
            ][:self.max_batch - 1]
            for mate in mates:
                mate.started = True
            return mates

    @staticmethod
    def _run_task(fn: Callable[[], Any], result: queue.Queue) -> None:
        try:
            result.put((True, fn()))
        except Exception as exc:
            result.put((False, exc))


def _fields(utterance: Utterance) -> tuple:
    return utterance.text, utterance.voice, utterance.language, utterance.params

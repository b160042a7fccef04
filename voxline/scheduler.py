"""The synthesis scheduler: the only way to the model, one request at a time, in arrival order.

XTTS keeps per-call state on the shared model (`gpt_inference.cached_prefix_emb`), so two
requests must never run on it at once, not even two generators interleaved in one thread.
Requests wait in a bounded FIFO; a full queue is refused at once, a client that goes away while
waiting leaves the queue, and a stream whose client goes away stops within one chunk.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np

logger = logging.getLogger(__name__)
T = TypeVar("T")


class QueueFull(Exception):
    """No room in the wait queue; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the synthesis queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class QueueTimeout(QueueFull):
    """Waited longer than the configured limit for the model."""


class Cancelled(Exception):
    """The client went away before or during synthesis."""


class Ticket:
    """A request's place in line; `release` is idempotent."""

    def __init__(self, scheduler: Scheduler, number: int, request_id: str) -> None:
        self.scheduler = scheduler
        self.number = number
        self.request_id = request_id
        self.holding = False
        self.started = 0.0

    def release(self) -> None:
        self.scheduler._release(self)


class Scheduler:
    """Owns exclusive use of one engine."""

    def __init__(self, max_queue: int = 16, wait_timeout_s: float = 120.0) -> None:
        self.max_queue = max_queue
        self.wait_timeout_s = wait_timeout_s
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._holder: Ticket | None = None
        self._numbers = itertools.count()
        self._recent_s = 2.0  # moving estimate of one request's model time, for Retry-After

    @property
    def depth(self) -> int:
        """Requests waiting for the model (not counting the one using it)."""
        with self._cond:
            return len(self._waiting)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._holder is not None

    def acquire(self, request_id: str, cancelled: Callable[[], bool] = lambda: False) -> Ticket:
        """Wait in line for the model; raise QueueFull, QueueTimeout or Cancelled."""
        with self._cond:
            if self._holder is not None and len(self._waiting) >= self.max_queue:
                raise QueueFull(self._retry_after())
            ticket = Ticket(self, next(self._numbers), request_id)
            self._waiting.append(ticket)
            deadline = time.monotonic() + self.wait_timeout_s
            try:
                while self._holder is not None or self._waiting[0] is not ticket:
                    if cancelled():
                        raise Cancelled(request_id)
                    if time.monotonic() > deadline:
                        raise QueueTimeout(self._retry_after())
                    self._cond.wait(0.1)
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.popleft()
            self._holder = ticket
            ticket.holding = True
            ticket.started = time.monotonic()
        return ticket

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            if self._holder is ticket:
                self._holder = None
                elapsed = time.monotonic() - ticket.started
                self._recent_s = 0.8 * self._recent_s + 0.2 * elapsed
                self._cond.notify_all()
            ticket.holding = False

    def _retry_after(self) -> int:
        return max(1, round(self._recent_s * (len(self._waiting) + 1)))

    def run(self, request_id: str, fn: Callable[[], T]) -> T:
        """Run `fn` with the model held (voice cloning, warm-up)."""
        ticket = self.acquire(request_id)
        try:
            return fn()
        finally:
            ticket.release()

    @staticmethod
    def stream(
        ticket: Ticket, chunks: Iterator[np.ndarray], cancelled: Callable[[], bool]
    ) -> Iterator[np.ndarray]:
        """Drive an engine stream for a ticket that holds the model; always close and release."""
        try:
            for chunk in chunks:
                if cancelled():
                    logger.info("[%s] client went away; stopping synthesis", ticket.request_id)
                    return
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            ticket.release()

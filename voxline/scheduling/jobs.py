"""One request inside the scheduler, and the errors a request can meet there."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voxline.engines.base import Engine, EngineStream, Utterance
from voxline.scheduling.admission import StreamNeed
from voxline.scheduling.costs import RenderCosts


class QueueFull(Exception):
    """No room for this request now; try again after `retry_after` seconds."""

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
    last_chunk_s: float = 0.0  # audio length of the latest chunk: the next one's best guess
    sentence_chars: int = 0  # characters of the sentence being synthesised
    sentence_audio_s: float = 0.0  # audio made of that sentence so far
    in_flight: bool = False  # a worker is stepping this job now

    def consumed_s(self) -> float:
        return self.audio_s if self.consumed is None else self.consumed()

    def deadline(self) -> float:
        """When this stream's listener runs out of audio (its arrival, before any audio),
        playing from its first chunk in real time. Counted from what was produced: audio the
        client has not taken yet is still in hand (counting only what it took made every
        stream due the instant its chunk was made, before its reader could take it, so a
        stream's next sentence jumped ahead of waiting newcomers). A client that takes less
        than it is given pauses the stream instead (`runnable`, `max_ahead_s`)."""
        if self.first_chunk_at is None:
            return self.arrival
        return self.first_chunk_at + self.audio_s

    def latest_start(self, costs: RenderCosts) -> float:
        """When its next chunk must start so that it is ready by the deadline: the order in
        which the scheduler serves streams with audio (newcomers all go first, by arrival)."""
        if self.first_chunk_at is None:
            return self.arrival
        return self.deadline() - costs.step_cost(self.last_chunk_s)

    def need(self, costs: RenderCosts, now: float, first_audio_s: float) -> StreamNeed:
        """Audio in hand ahead of the listener and audio still to make, predicted. A stream
        not yet playing is due `first_audio_s` after its arrival (its first-audio allowance),
        then plays on; each next chunk is due whole."""
        left = costs.audio_of_text(sum(len(s.text) for s in self.sentences))
        if self.stream is not None:
            left += max(0.0, costs.audio_of_text(self.sentence_chars) - self.sentence_audio_s)
        if self.first_chunk_at is None:
            due = max(0.0, self.arrival + first_audio_s - now)
            return StreamNeed(due, left, costs.first_chunk_s())
        return StreamNeed(max(0.0, self.deadline() - now), left, self.last_chunk_s)

    def cancelled(self) -> bool:
        return self.cancel.is_set() or self.client_gone()

    def runnable(self, max_ahead_s: float) -> bool:
        """Whether a worker may step this job now: not cancelled, not being stepped, and not
        so far ahead of its client that its turn should go to others until the client reads."""
        return (not self.cancel.is_set() and not self.in_flight
                and self.audio_s - self.consumed_s() <= max_ahead_s)

"""A render's encoded audio, written once by its producer and read by any number of clients.

The producer (a render thread) writes at synthesis speed; each reader takes the bytes at its
own pace, so a stalled or vanished reader never slows, stalls or truncates another. A tape
that fails carries its error to every reader, which must then fail visibly too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ClientGone(Exception):
    """The reader's client closed its connection."""


class RenderStalled(RuntimeError):
    """The render produced nothing for longer than a reader may wait."""


@dataclass(frozen=True)
class Part:
    """Encoded bytes, the audio seconds they end at, and the words they complete."""

    data: bytes
    end_s: float
    words: tuple[Any, ...] = ()


class Tape:
    """Encoded parts of one render, each marked with the audio seconds it ends at."""

    def __init__(self, keep: bool = True) -> None:
        # keep=False: nobody joins later (not shared), so parts every reader has are dropped.
        self.keep = keep
        self._cond = threading.Condition()
        self._parts: list[Part] = []
        self._readers: set[TapeReader] = set()
        self._dropped = 0  # parts before this index were released (keep=False)
        self._done = False
        self.error: BaseException | None = None
        self.started_at: float | None = None  # admitted by the scheduler
        self._progress_at = time.monotonic()

    # Producer side ------------------------------------------------------------------------

    def start(self) -> None:
        """The render has its model slot: from now on, silence counts as a stall."""
        with self._cond:
            self.started_at = self._progress_at = time.monotonic()

    def write(self, data: bytes, audio_s: float, words: tuple[Any, ...] = ()) -> None:
        """Append encoded bytes ending at `audio_s` seconds of audio, with the words whose
        last sample they carry (neither bytes nor words: progress only)."""
        with self._cond:
            self._progress_at = time.monotonic()
            if not data and not words:
                return
            self._parts.append(Part(data, audio_s, tuple(words)))
            self._cond.notify_all()

    def touch(self) -> None:
        """Progress without bytes (a whole-file render collecting its audio)."""
        with self._cond:
            self._progress_at = time.monotonic()

    def close(self, error: BaseException | None = None) -> None:
        """End the tape: complete when `error` is None, failed otherwise."""
        with self._cond:
            self._done, self.error = True, error
            self._cond.notify_all()

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait until the producer has ended the tape; False on time-out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout_s)

    # Facts --------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        with self._cond:
            return self._done and self.error is None

    @property
    def readers(self) -> int:
        with self._cond:
            return len(self._readers)

    def data(self) -> bytes:
        """Every byte written (for a kept tape)."""
        with self._cond:
            return b"".join(p.data for p in self._parts)

    def words(self) -> tuple[Any, ...]:
        """Every word written (for a kept tape)."""
        with self._cond:
            return tuple(w for p in self._parts for w in p.words)

    def consumed_s(self) -> float:
        """Audio seconds the furthest reader has handed to its client."""
        with self._cond:
            taken = max((r.taken for r in self._readers), default=0)
            return self._parts[taken - 1].end_s if taken else 0.0

    # Reader side --------------------------------------------------------------------------

    def reader(self) -> TapeReader:
        reader = TapeReader(self)
        with self._cond:
            self._readers.add(reader)
        return reader

    def _forget_read(self) -> None:
        """Drop parts every reader has passed (bounded memory for a tape nobody joins)."""
        with self._cond:
            low = min((r.taken for r in self._readers), default=0)
            for i in range(self._dropped, low):
                self._parts[i] = Part(b"", self._parts[i].end_s)
            self._dropped = max(self._dropped, low)

    def _leave(self, reader: TapeReader) -> None:
        with self._cond:
            self._readers.discard(reader)

    def _wait(self, position: int, stall_s: float, gone: Callable[[], bool]) -> list[Part]:
        """Parts after `position`, once there are any; [] at a clean end."""
        with self._cond:
            while True:
                if len(self._parts) > position:
                    return self._parts[position:]
                if self._done:
                    if self.error is not None:
                        raise self.error
                    return []
                started = self.started_at is not None
                if started and time.monotonic() - self._progress_at > stall_s:
                    raise RenderStalled(f"no audio for {stall_s:.0f} s")
                self._cond.wait(0.05)
                if gone():
                    raise ClientGone()


class TapeReader:
    """One client's position on a tape."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self._position = 0
        self.taken = 0  # parts handed on before the latest `next` call
        self._closed = False

    def next(self, stall_s: float, gone: Callable[[], bool] = lambda: False) -> bytes:
        """The bytes available after what this reader has seen (waiting for some); b"" at the
        tape's clean end. Raises the render's error, RenderStalled or ClientGone."""
        while parts := self.next_parts(stall_s, gone):
            data = b"".join(p.data for p in parts)
            if data:
                return data
        return b""

    def next_parts(self, stall_s: float,
                   gone: Callable[[], bool] = lambda: False) -> list[Part]:
        """As `next`, as parts (bytes with their audio marks and words); [] at the end."""
        self.taken = self._position  # the caller has sent what it got last time
        if not self.tape.keep:
            self.tape._forget_read()
        parts = self.tape._wait(self._position, stall_s, gone)
        self._position += len(parts)
        return parts

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.tape._leave(self)

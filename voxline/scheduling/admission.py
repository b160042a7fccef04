"""Admission by predicted lateness: a pure check of whether the engine can start one more
stream without making it or any running stream late, and when it could.

Every stream is reduced to three numbers: the audio its listener has in hand (`buffered_s`),
the audio still to make (`remaining_s`) and the audio of its chunks (`chunk_s`: a chunk
arrives whole, so a stream due within `h` needs its whole next chunk by then). Within the next
`h` seconds a stream needs `min(remaining_s, h - buffered_s)` more seconds of audio, rounded up
to whole chunks; the engine makes `capacity` seconds of audio per second. The newcomer fits
when, at every horizon, everyone's need fits the engine's output (the processor-demand test of
deadline scheduling). `retry_after` plays the streams forward in real time until it would fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HORIZONS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SHORTEST_S = 0.25  # no horizon is shorter: a chunk in progress is not counted as late


@dataclass(frozen=True)
class StreamNeed:
    """One stream's position: audio in hand ahead of its listener, audio left to make, and
    the audio one chunk of it carries (0: audio comes in a smooth flow)."""

    buffered_s: float
    remaining_s: float
    chunk_s: float = 0.0

    def need(self, horizon_s: float) -> float:
        """Seconds of audio this stream must get within `horizon_s` to play without a gap."""
        gap = horizon_s - self.buffered_s
        if gap <= 0:
            return 0.0
        if self.chunk_s > 0:
            gap = math.ceil(gap / self.chunk_s - 1e-9) * self.chunk_s
        return min(self.remaining_s, gap)

    def later(self, dt: float) -> StreamNeed:
        """Where the stream stands `dt` seconds on if it is served just in time: each chunk
        arrives as the audio before it runs out."""
        if dt <= self.buffered_s:
            return StreamNeed(self.buffered_s - dt, self.remaining_s, self.chunk_s)
        played = dt - self.buffered_s
        made = played if self.chunk_s <= 0 else math.ceil(played / self.chunk_s) * self.chunk_s
        made = min(made, self.remaining_s)
        return StreamNeed(max(0.0, made - played), self.remaining_s - made, self.chunk_s)

    def due_points(self) -> list[float]:
        """Horizons where this stream's need steps up: its next two chunks' deadlines."""
        if self.remaining_s <= 0:
            return []
        return [self.buffered_s + 1e-6, self.buffered_s + self.chunk_s + 1e-6]


def fits(running: Sequence[StreamNeed], newcomer: StreamNeed, capacity: float,
         horizons: Sequence[float] = HORIZONS_S) -> bool:
    """Whether `capacity` (audio seconds per second) serves every stream and the newcomer
    in time at every horizon."""
    streams = [*running, newcomer]
    points = {max(SHORTEST_S, p) for s in streams for p in s.due_points()}
    checked = sorted({*horizons, *(p for p in points if p <= max(horizons))})
    return all(sum(s.need(h) for s in streams) <= capacity * h for h in checked)


def capacity_streams(audio_rate: float | None, target_load: float) -> float | None:
    """Real-time streams the engine sustains at `target_load` of its measured output."""
    return None if audio_rate is None else audio_rate * target_load


def retry_after(running: Sequence[StreamNeed], newcomer: StreamNeed, capacity: float,
                longest_s: int = 120) -> int:
    """Whole seconds until the newcomer would fit (at least 1, at most `longest_s`)."""
    for wait in range(1, longest_s + 1):
        if fits([s.later(wait) for s in running], newcomer, capacity):
            return wait
    return longest_s


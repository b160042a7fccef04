"""A simulated real-time audio player fed by timestamped network reads.

The player starts as soon as `prebuffer_s` of audio has arrived (by default: at the first byte)
and then consumes audio at exactly real time. When its buffer runs dry before the stream has
ended it stalls until the next bytes arrive and resumes at once: that is one underrun, and the
time it waited is stall time. A caller on a phone hears each underrun as a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arrival:
    """`nbytes` of audio became readable at `t` seconds (any common time origin)."""

    t: float
    nbytes: int


@dataclass(frozen=True)
class PlayerResult:
    """What a listener would have experienced."""

    start_t: float | None  # when playback began (None: nothing arrived)
    end_t: float | None  # when the last sample finished playing
    audio_s: float
    underruns: int
    stall_s: float
    stalls: list[float] = field(default_factory=list)


def simulate_player(
    arrivals: Sequence[Arrival], bytes_per_second: float, prebuffer_s: float = 0.0
) -> PlayerResult:
    """Play `arrivals` in real time and report underruns (count, total and each stall)."""
    if bytes_per_second <= 0:
        raise ValueError("bytes_per_second must be positive")
    if prebuffer_s < 0:
        raise ValueError("prebuffer_s must be 0 or more")
    events = sorted(((a.t, a.nbytes) for a in arrivals if a.nbytes > 0), key=lambda e: e[0])
    if not events:
        return PlayerResult(None, None, 0.0, 0, 0.0, [])
    total_s = sum(n for _, n in events) / bytes_per_second

    # Playback begins once the prebuffer is filled, or when the stream ends short of it.
    buffered = 0.0
    start_index = len(events) - 1
    for i, (_, n) in enumerate(events):
        buffered += n / bytes_per_second
        if buffered >= prebuffer_s:
            start_index = i
            break
    start_t = events[start_index][0]
    play_end = start_t + buffered  # when the audio received so far runs out

    stalls: list[float] = []
    for t, n in events[start_index + 1 :]:
        if t > play_end:
            stalls.append(t - play_end)
            play_end = t
        play_end += n / bytes_per_second
    return PlayerResult(start_t, play_end, total_s, len(stalls), sum(stalls), stalls)


def coalesce(arrivals: Sequence[Arrival], window_s: float) -> list[Arrival]:
    """Merge reads within `window_s` of the previous one: a server chunk that TCP split."""
    merged: list[Arrival] = []
    last_t = None
    for a in arrivals:
        if merged and last_t is not None and a.t - last_t <= window_s:
            merged[-1] = Arrival(merged[-1].t, merged[-1].nbytes + a.nbytes)
        else:
            merged.append(a)
        last_t = a.t
    return merged

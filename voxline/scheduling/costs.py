"""What work costs on this machine, measured from the engine's own steps (no fixed guesses).

`RenderCosts` learns, per engine, the engine seconds one second of audio takes at each level of
parallel renders, and how much audio a character of text becomes; from them the scheduler
predicts a stream's next-chunk cost and the server's capacity in real-time streams.
`StepCosts` learns what one batched decode step costs by the number of rows in it (XTTS).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

_SMOOTHING = 0.2  # weight of each new observation in the moving averages


def _blend(old: float | None, new: float, weight: float = _SMOOTHING) -> float:
    return new if old is None else (1 - weight) * old + weight * new


class RenderCosts:
    """Moving averages of one engine's measured pace; safe to share between worker threads."""

    def __init__(self, parallel: int = 1) -> None:
        self.parallel = max(1, parallel)
        self._lock = threading.Lock()
        # Audio seconds made per wall second, keyed by how many renders ran at once.
        self._rate: dict[int, float] = {}
        self._audio_per_char: float | None = None
        self._first_chunk_s: float | None = None

    def observe_first_chunk(self, audio_s: float) -> None:
        """A stream's first chunk carried `audio_s` of audio."""
        with self._lock:
            self._first_chunk_s = _blend(self._first_chunk_s, audio_s)

    def first_chunk_s(self) -> float:
        """The audio a first chunk typically carries (0 before any)."""
        return self._first_chunk_s or 0.0

    def observe_step(self, seconds: float, audio_s: float, concurrent: int = 1) -> None:
        """One step that took `seconds` of wall time and made `audio_s` of audio while
        `concurrent` renders (this one included) were running; a batched step is one render."""
        if audio_s <= 0 or seconds <= 0:
            return
        level = min(max(1, concurrent), self.parallel)
        with self._lock:
            self._rate[level] = _blend(self._rate.get(level), level * audio_s / seconds)

    def observe_text(self, chars: int, audio_s: float) -> None:
        """A finished sentence: `chars` characters became `audio_s` seconds."""
        if chars > 0 and audio_s > 0:
            with self._lock:
                self._audio_per_char = _blend(self._audio_per_char, audio_s / chars)

    def audio_rate(self) -> float | None:
        """Audio seconds the engine makes per second with its renders busy (None: unknown):
        the best measured level of parallel renders. A level not yet seen counts as no gain
        over the ones below (cores may be shared): it is measured as soon as renders overlap."""
        with self._lock:
            return max(self._rate.values()) if self._rate else None

    def step_cost(self, audio_s: float) -> float:
        """Predicted wall seconds one render takes to make `audio_s` of audio, at the slowest
        measured level of parallel renders (0 while unknown)."""
        with self._lock:
            if not self._rate:
                return 0.0
            return audio_s * max(level / rate for level, rate in self._rate.items())

    def audio_of_text(self, chars: int) -> float:
        """Predicted seconds of audio for `chars` characters (15 characters a second before
        any measurement: ordinary speech)."""
        per_char = self._audio_per_char if self._audio_per_char is not None else 1 / 15
        return chars * per_char


class StepCosts:
    """Wall seconds of one batched decode step by its number of rows, refreshed from every
    step; sizes not yet measured are interpolated (or extrapolated linearly: the cautious guess
    on a CPU, where a row costs about as much as a step alone)."""

    def __init__(self, measured: Mapping[int, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[int, float] = dict(measured or {})

    def observe(self, rows: int, seconds: float) -> None:
        if rows >= 1 and seconds > 0:
            with self._lock:
                self._seconds[rows] = _blend(self._seconds.get(rows), seconds)

    def seed(self, rows: int, seconds: float) -> None:
        """Set a measured cost outright (a calibration), replacing any average."""
        with self._lock:
            self._seconds[rows] = seconds

    def table(self) -> dict[int, float]:
        with self._lock:
            return dict(sorted(self._seconds.items()))

    def __call__(self, rows: int) -> float | None:
        """Predicted seconds of a step with `rows` rows (None: nothing measured yet)."""
        table = self.table()
        if not table:
            return None
        if rows in table:
            return table[rows]
        below = [n for n in table if n < rows]
        above = [n for n in table if n > rows]
        if below and above:
            lo, hi = max(below), min(above)
            share = (rows - lo) / (hi - lo)
            return table[lo] + share * (table[hi] - table[lo])
        if above:  # fewer rows than any measured: no cheaper than the smallest, per row
            n = min(above)
            return table[n] * rows / n
        n = max(below)
        return table[n] * rows / n

"""Output level policy and float32 to int16 conversion.

The level policy is applied to float32 samples at the output rate, just before conversion to
int16 (after resampling, so that inter-sample peaks the resampler creates are caught too):

- ``none``: samples pass unchanged; conversion clips anything beyond full scale.
- ``gain:DB``: a fixed gain in dB (e.g. ``gain:-3``), then clipping at full scale.
- ``limit`` or ``limit:DB`` (the default, 0 dB): optional fixed gain, then a memoryless soft-knee
  peak limiter: samples below -1 dBFS pass bit-for-bit, louder ones bend smoothly (tanh) towards
  full scale instead of being clipped flat. It has no state, so chunking never changes the result.

``parse_level_policy("limit")`` turns the setting text (e.g. a ``VOXLINE_LEVEL`` variable) into
a :class:`LevelPolicy`; it raises ``ValueError`` with a readable message for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

LevelMode = Literal["none", "gain", "limit"]

INT16_SCALE = 32767.0
LIMIT_KNEE = 10 ** (-1 / 20)  # -1 dBFS: below this the limiter is transparent


@dataclass(frozen=True)
class LevelPolicy:
    """How loud the output is: no change, a fixed gain, or a fixed gain plus a soft limiter."""

    mode: LevelMode = "limit"
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("none", "gain", "limit"):
            raise ValueError(f"level mode must be none, gain or limit, not {self.mode!r}")
        if self.mode == "none" and self.gain_db != 0.0:
            raise ValueError("level mode 'none' takes no gain")
        if not -60.0 <= self.gain_db <= 40.0:
            raise ValueError(f"level gain must be within -60..40 dB, not {self.gain_db}")

    @property
    def bounded(self) -> bool:
        """Return True when apply() never leaves [-1, 1], so conversion needs no clipping."""
        return self.mode == "limit"

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Return the float32 samples with this policy applied (may return the input itself)."""
        if self.mode == "none":
            return samples
        out = samples * np.float32(10 ** (self.gain_db / 20)) if self.gain_db else samples
        if self.mode == "limit":
            out = _soft_limit(out)
        return out


DEFAULT_LEVEL = LevelPolicy()


def parse_level_policy(text: str) -> LevelPolicy:
    """Parse a setting such as ``none``, ``gain:-3`` or ``limit:+2`` into a LevelPolicy."""
    mode, _, gain = text.strip().lower().partition(":")
    try:
        gain_db = float(gain.removesuffix("db")) if gain else 0.0
    except ValueError as exc:
        raise ValueError(f"level gain must be a number of dB, not {gain!r}") from exc
    if mode == "gain" and not gain:
        raise ValueError("level mode 'gain' needs a value, e.g. gain:-3")
    return LevelPolicy(mode=mode, gain_db=gain_db)  # type: ignore[arg-type]


def _soft_limit(samples: np.ndarray) -> np.ndarray:
    """Bend samples above the knee smoothly towards full scale (slope 1 at the knee)."""
    if not samples.size or np.maximum.reduce(np.abs(samples)) <= LIMIT_KNEE:
        return samples  # the usual case, checked with as few numpy calls as possible
    loud = np.abs(samples) > LIMIT_KNEE
    out = np.array(samples, dtype=np.float32, copy=True)
    peaks = out[loud]
    room = 1.0 - LIMIT_KNEE
    bent = LIMIT_KNEE + room * np.tanh((np.abs(peaks) - LIMIT_KNEE) / room)
    out[loud] = np.copysign(bent, peaks)
    return out


_SCALE, _LOW, _HIGH = np.float32(INT16_SCALE), np.float32(-32768.0), np.float32(32767.0)


def float_to_int16(samples: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Scale float samples by 32767, round, and clip to the int16 range (never wrap around)."""
    # Plain ufuncs with out=: this runs once per 20 ms chunk, where call overhead dominates.
    scaled = np.multiply(samples, _SCALE, dtype=np.float32)
    if clip:  # callers pass False only for samples already within [-1, 1]
        np.minimum(scaled, _HIGH, out=scaled)
        np.maximum(scaled, _LOW, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.int16)


def apply_level(policy: LevelPolicy, samples: np.ndarray) -> np.ndarray:
    """Apply the level policy and convert float samples to int16."""
    return float_to_int16(policy.apply(samples), clip=not policy.bounded)

"""Signal helpers shared by the audio tests (tones, level measurements, running a pipeline)."""

from __future__ import annotations

import numpy as np

from voxline.audio import AudioPipeline, LevelPolicy, resolve_output

FLAT = LevelPolicy("none")


def tone(freq: float, rate: int = 24000, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    """Return a float32 sine with 20 ms raised-cosine fades (no onset click to splatter)."""
    t = np.arange(int(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    n = int(0.02 * rate)
    fade = np.hanning(2 * n)
    x[:n] *= fade[:n]
    x[-n:] *= fade[n:]
    return x.astype(np.float32)


def run(fmt: str, rate: int | None, x: np.ndarray, chunk: int, native: int = 24000, **kw) -> bytes:
    """Feed x through a fresh pipeline in chunks of the given size; return every byte."""
    kw.setdefault("level", FLAT)
    with AudioPipeline(resolve_output(fmt, rate, native), native, **kw) as pipe:
        parts = [pipe.header()]
        parts += [pipe.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
        parts.append(pipe.finish())
    return b"".join(parts)


def fit_amplitude(y: np.ndarray, freq: float, rate: int) -> tuple[float, np.ndarray]:
    """Least-squares fit of a sine at freq; return its amplitude and the residual."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(*coef)), y - basis @ coef


def db(ratio: float) -> float:
    """Return a ratio in dB (-inf for zero)."""
    return float(20 * np.log10(ratio)) if ratio > 0 else float("-inf")


def rms(y: np.ndarray) -> float:
    """Return the root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0

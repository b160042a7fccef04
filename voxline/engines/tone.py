"""A synthetic engine with fixed chunk timing: for tests and for measuring server overhead."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from voxline.engines.base import Conditioning, Engine, SynthesisParams

# About how fast people speak: used to turn text length into audio length.
SECONDS_PER_CHAR = 1 / 14


class ToneEngine(Engine):
    """Speaks a sine whose pitch is the voice's, one chunk every `chunk_ms`."""

    name = "tone"
    sample_rate = 24000
    languages = ("en", "de", "es", "fr")

    def __init__(self, chunk_ms: float = 20.0, first_chunk_ms: float | None = None) -> None:
        self.chunk_ms = chunk_ms
        self.first_chunk_ms = chunk_ms if first_chunk_ms is None else first_chunk_ms

    def builtin_voices(self) -> dict[str, Conditioning]:
        return {
            "tone-a": {"frequency": np.array([440.0])},
            "tone-b": {"frequency": np.array([660.0])},
        }

    def stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> Iterator[np.ndarray]:
        total = max(1, round(len(text) * SECONDS_PER_CHAR / params.speed * self.sample_rate))
        chunk = max(1, round(self.chunk_ms / 1000 * self.sample_rate))
        frequency = float(voice["frequency"][0])
        step = 2 * np.pi * frequency / self.sample_rate
        for start in range(0, total, chunk):
            delay = self.first_chunk_ms if start == 0 else self.chunk_ms
            time.sleep(delay / 1000)
            n = np.arange(start, min(start + chunk, total))
            yield (0.5 * np.sin(step * n)).astype(np.float32)

"""Fixtures for the framework integrations: a real gunicorn with the tone engine."""

from __future__ import annotations

import numpy as np
import pytest

TONE_RATE = 24000
SECONDS_PER_CHAR = 1 / 14  # the tone engine's speaking rate (voxline/engines/tone.py)


@pytest.fixture(scope="module")
def tone_server(module_server):
    """gunicorn serving the tone engine (voice tone-a: a 440 Hz sine, paced in real time)."""
    return module_server(VOXLINE_ENGINE="tone", VOXLINE_PHRASE_CACHE_MB="0")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency of a stretch of audio."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def longest_silence_ms(samples: np.ndarray, rate: int) -> float:
    """The longest run of exact zeros (a gap in the audio), in ms."""
    zero = np.concatenate(([0], (samples == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(zero))
    runs = edges[1::2] - edges[::2]
    return float(runs.max() * 1000 / rate) if len(runs) else 0.0


def tone_samples(text: str, rate: int = TONE_RATE) -> int:
    """How many samples the tone engine speaks for one segment's text."""
    return max(1, round(len(text.strip()) * SECONDS_PER_CHAR * rate))

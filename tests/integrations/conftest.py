"""Fixtures for the framework integrations: a real gunicorn with the tone engine, and one with
Piper (real words, timed exactly) for the tests of the words a caller heard."""

from __future__ import annotations

import numpy as np
import pytest
import requests

TONE_RATE = 24000
SECONDS_PER_CHAR = 1 / 14  # the tone engine's speaking rate (voxline/engines/tone.py)


@pytest.fixture(scope="module")
def tone_server(module_server):
    """gunicorn serving the tone engine (voice tone-a: a 440 Hz sine, paced in real time)."""
    return module_server(VOXLINE_ENGINE="tone", VOXLINE_PHRASE_CACHE_MB="0")


@pytest.fixture(scope="module")
def piper_server(module_server):
    """gunicorn serving Piper (voice joe), warmed by one synthesis: a cold first render can
    outlast a framework's wait for the first audio."""
    server = module_server(VOXLINE_ENGINE="piper", VOXLINE_PHRASE_CACHE_MB="0")
    requests.post(server.url + "/tts", json={"text": "Warm up.", "format": "wav"}, timeout=60)
    return server


def heard_text(text: str, words: list[dict], played_ms: float) -> str:
    """The text up to the end of the last word whose audio ended by `played_ms` (the server's
    rule for `heard_text`, applied to what a player played)."""
    ends = [w["text_end"] for w in words if w["end_ms"] <= played_ms]
    return text[: max(ends)] if ends else ""


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

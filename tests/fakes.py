"""Fake engines injected through the app factory (unit tests only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from voxline.engines.base import Clip, Conditioning, Engine, SynthesisParams


class FakeEngine(Engine):
    """Yields `n_chunks` ramps of `chunk_len` samples (1 s in all by default: a plausible length
    for a short phrase, so the phrase cache keeps it); can block, fail, and counts closes."""

    name = "fake"
    sample_rate = 24000
    languages = ("en", "de")
    can_clone = True

    def __init__(self, n_chunks: int = 3, chunk_len: int = 8000) -> None:
        self.n_chunks = n_chunks
        self.chunk_len = chunk_len
        self.gate: threading.Event | None = None  # when set, each chunk waits for it
        self.permits: threading.Semaphore | None = None  # each chunk takes one permit
        self.fail_after: int | None = None
        self.delay_s = 0.0  # time to make each chunk
        self.started = 0
        self.closed = 0
        self.finished = 0
        self.conditioned = 0
        self.chunks_made = 0
        self.lock = threading.Lock()

    def builtin_voices(self) -> dict[str, Conditioning]:
        return {"alice": {"offset": np.array([0.0])}, "bob": {"offset": np.array([0.25])}}

    def compute_conditioning(self, clips: list[Clip]) -> Conditioning:
        with self.lock:
            self.conditioned += 1
        level = float(np.mean([np.abs(c.samples).mean() for c in clips]))
        return {"offset": np.array([min(level, 0.25)])}

    def expected(self, voice: Conditioning) -> np.ndarray:
        """The exact float samples one `stream` call yields, concatenated."""
        return np.concatenate([self._chunk(i, voice) for i in range(self.n_chunks)])

    def _chunk(self, i: int, voice: Conditioning) -> np.ndarray:
        base = np.linspace(-0.5, 0.5, self.chunk_len, dtype=np.float32)
        return (base * (i + 1) / self.n_chunks + float(voice["offset"][0])).astype(np.float32)

    def stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> Iterator[np.ndarray]:
        with self.lock:
            self.started += 1
        try:
            for i in range(self.n_chunks):
                if self.gate is not None:
                    self.gate.wait(10)
                if self.permits is not None:
                    self.permits.acquire(timeout=10)
                if self.delay_s:
                    time.sleep(self.delay_s)
                if self.fail_after is not None and i >= self.fail_after:
                    raise RuntimeError("synthetic engine failure")
                with self.lock:
                    self.chunks_made += 1
                yield self._chunk(i, voice)
            with self.lock:
                self.finished += 1
        except GeneratorExit:
            with self.lock:
                self.closed += 1
            raise


def create_app():
    """A gunicorn app factory serving a FakeEngine shaped by FAKE_* variables (settings from
    VOXLINE_*), for failure tests through a real server: `tests.fakes:create_app()`."""
    import os

    from voxline.server.app import create_app as voxline_app

    engine = FakeEngine(int(os.environ.get("FAKE_CHUNKS", "3")),
                        int(os.environ.get("FAKE_CHUNK_LEN", "8000")))
    if os.environ.get("FAKE_FAIL_AFTER"):
        engine.fail_after = int(os.environ["FAKE_FAIL_AFTER"])
    engine.delay_s = float(os.environ.get("FAKE_DELAY_S", "0"))
    return voxline_app({"engine": engine})

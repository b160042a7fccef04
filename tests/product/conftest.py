"""Helpers for the product-surface tests: clips, an engine with XTTS-shaped latents, keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.fakes import FakeEngine
from voxline.engines.base import Clip, Conditioning

API_KEY = "api-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def speech_like(seconds: float, rate: int = 22050, level: float = 0.3,
                pause_every: float = 1.0) -> np.ndarray:
    """A voiced-sounding signal: harmonics at 140 Hz, syllable-rate envelope, short pauses."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))  # four syllables a second
    envelope[(t % pause_every) > pause_every * 0.8] = 0.0  # a pause in every second
    x = voiced * envelope
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def write_clip(path: Path, samples: np.ndarray, rate: int = 22050, fmt: str = "wav") -> Path:
    """Write samples as WAV, or through ffmpeg as mp3 / ogg / flac / m4a."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "wav":
        soundfile.write(str(path), samples, rate, subtype="PCM_16")
        return path
    codec = {"mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libopus"],
             "flac": ["-c:a", "flac"], "m4a": ["-c:a", "aac"]}[fmt]
    subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(rate), "-ac", "1",
                    "-i", "pipe:0", *codec, "-y", str(path)],
                   input=samples.astype("<f4").tobytes(), check=True)
    return path


class LatentEngine(FakeEngine):
    """A fake engine whose voices are XTTS-shaped latents (gpt_cond_latent, speaker_embedding)
    and whose audio depends on them, so tests can tell voices apart."""

    name = "fake-xtts"
    SHAPES = {"gpt_cond_latent": (1, 4, 8), "speaker_embedding": (1, 16, 1)}

    def builtin_voices(self) -> dict[str, Conditioning]:
        return {"alice": self.latents(0.1), "bob": self.latents(0.2)}

    @classmethod
    def latents(cls, value: float) -> Conditioning:
        return {name: np.full(shape, value, dtype=np.float32)
                for name, shape in cls.SHAPES.items()}

    def compute_conditioning(self, clips: list[Clip]) -> Conditioning:
        with self.lock:
            self.conditioned += 1
        level = float(np.mean([np.abs(c.samples).mean() for c in clips]))
        return self.latents(round(level, 3))

    def _chunk(self, i: int, voice: Conditioning) -> np.ndarray:
        offset = {"offset": np.array([float(voice["speaker_embedding"].mean())])}
        return super()._chunk(i, offset)


@pytest.fixture
def admin_app(make_app):
    """An app with an admin key, around the given engine (FakeEngine by default)."""

    def build(engine=None, **settings):
        settings.setdefault("admin_keys", (ADMIN_KEY,))
        return make_app(engine or FakeEngine(), **settings)

    return build

"""Finding and reading the reference clips of the `speakers/` folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile

from voxline.engines.base import Clip

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_SECONDS = 1.0
SILENCE_PEAK = 1e-4


class ClipError(ValueError):
    """A clip cannot serve as a voice reference; the message says why."""


def is_safe_name(name: str) -> bool:
    """Voice names users may pass: letters, digits, `_.-`, no leading dot, at most 64 chars."""
    return bool(SAFE_NAME.match(name)) and ".." not in name


def discover(folder: Path) -> dict[str, list[Path]]:
    """Map voice names to clip paths: `NAME.wav` is one clip, `NAME/*.wav` several.

    Hidden entries are skipped: uploads are staged in `.upload-*` folders until complete.
    """
    voices: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return voices
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in AUDIO_SUFFIXES:
            voices.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            clips = sorted(p for p in entry.iterdir()
                           if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if clips:
                voices.setdefault(entry.name, []).extend(clips)
    return voices


def read_clip(path: Path) -> Clip:
    """Read any rate, mono or multichannel, as mono float32; reject what cannot serve."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise ClipError(f"{path.name}: not readable audio ({exc})") from exc
    mono = data.mean(axis=1).astype(np.float32)
    if len(mono) < MIN_SECONDS * rate:
        raise ClipError(f"{path.name}: {len(mono) / rate:.2f} s is shorter than {MIN_SECONDS} s")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise ClipError(f"{path.name}: silent")
    return Clip(samples=mono, sample_rate=int(rate), source=path.name)

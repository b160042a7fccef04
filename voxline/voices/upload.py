"""Uploaded reference clips: decode any format with ffmpeg, check them, normalise them.

Every check raises UploadError with a stable code and a message naming the file; the admin
API maps the code to a clear 4xx. Heavy clipping is only a warning: such a
clip still clones a voice, just a harsher one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxline.engines.base import Clip

STORE_RATE = 22050  # what XTTS computes conditioning from: stored clips need no resampling
MIN_SPEECH_S = 3.0
FRAME_S = 0.02
# A frame has sound when it is above -50 dBFS and within 30 dB of the loudest frame.
ACTIVE_FLOOR_DB = -50.0
ACTIVE_RANGE_DB = 30.0
SILENT_PEAK = 10 ** (-60 / 20)
CLIP_LEVEL = 0.99
HEAVY_CLIPPING = 0.001  # fraction of samples at the rails that earns a warning
TARGET_RMS_DB = -20.0  # loudness of the active frames after normalisation
PEAK_CEILING = 10 ** (-1 / 20)
DECODE_TIMEOUT_S = 60.0


class UploadError(ValueError):
    """A clip or request that cannot make a voice; `code` and the message go to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class CheckedClip:
    """One decoded clip with what the checks measured."""

    filename: str
    samples: np.ndarray  # mono float32 at STORE_RATE, normalised
    seconds: float
    speech_seconds: float
    clipped_fraction: float
    warnings: list[str] = field(default_factory=list)

    def as_clip(self, source: str) -> Clip:
        return Clip(samples=self.samples, sample_rate=STORE_RATE, source=source)


def decode(path: Path, filename: str, max_seconds: float) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at STORE_RATE.

    Decoding stops just past `max_seconds`, so an hour-long upload costs no more than a long
    clip; `check` then reports it as too long.
    """
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(STORE_RATE),
        "-t", f"{max_seconds + 0.5:.3f}", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UploadError("not_audio", f"{filename}: decoding took too long") from exc
    samples = np.frombuffer(proc.stdout, dtype="<f4")
    if proc.returncode != 0 or samples.size == 0:
        raise UploadError("not_audio",
                          f"{filename}: not an audio file ffmpeg can decode (wav, mp3, ogg, "
                          "flac, m4a, ...)")
    return np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)


def frame_levels_db(samples: np.ndarray, rate: int = STORE_RATE) -> np.ndarray:
    """RMS level of each 20 ms frame, in dBFS (-120 for digital silence)."""
    n = int(FRAME_S * rate)
    frames = len(samples) // n
    if frames == 0:
        return np.zeros(0)
    power = np.mean(np.square(samples[: frames * n].reshape(frames, n), dtype=np.float64), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-12))


def active_frames(levels_db: np.ndarray) -> np.ndarray:
    """Which frames carry sound: above the floor and within range of the loudest frame."""
    if levels_db.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = max(ACTIVE_FLOOR_DB, float(levels_db.max()) - ACTIVE_RANGE_DB)
    return levels_db > threshold


def check(filename: str, samples: np.ndarray, max_seconds: float) -> CheckedClip:
    """Measure one decoded clip and normalise it; raise UploadError if too long or silent."""
    seconds = len(samples) / STORE_RATE
    if seconds > max_seconds:
        raise UploadError("too_long",
                          f"{filename}: longer than {max_seconds:g} s (XTTS uses at most the first "
                          "30 s of each clip; trim it)")
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    active = active_frames(frame_levels_db(samples))
    if peak < SILENT_PEAK or not active.any():
        raise UploadError("silent", f"{filename}: silent (peak below -60 dBFS)")
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
    clip = CheckedClip(filename, normalise(samples), seconds, float(active.sum()) * FRAME_S,
                       clipped)
    if clipped >= HEAVY_CLIPPING:
        clip.warnings.append(
            f"{filename}: heavily clipped ({clipped:.1%} of samples at full scale); the voice "
            "may sound distorted"
        )
    return clip


def check_voice(clips: list[CheckedClip]) -> None:
    """A voice needs MIN_SPEECH_S of sound across its clips."""
    speech = sum(c.speech_seconds for c in clips)
    if speech < MIN_SPEECH_S:
        raise UploadError("too_short",
                          f"{speech:.1f} s of speech; a voice needs at least {MIN_SPEECH_S:g} s "
                          "(10-30 s clones best)")


def normalise(samples: np.ndarray) -> np.ndarray:
    """Bring the active frames to TARGET_RMS_DB without letting a peak pass -1 dBFS."""
    levels = frame_levels_db(samples)
    active = active_frames(levels)
    if not active.any():
        return samples.astype(np.float32)
    rms_db = 10 * np.log10(np.mean(10 ** (levels[active] / 10)))
    gain = 10 ** ((TARGET_RMS_DB - rms_db) / 20)
    peak = float(np.max(np.abs(samples)))
    gain = min(gain, PEAK_CEILING / peak)
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)

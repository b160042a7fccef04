"""The per-response output pipeline: float32 chunks → resample → level → encode → bytes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from voxline.audio.encoders import RAW_FORMATS, Encoder, RawEncoder
from voxline.audio.ffmpeg import FfmpegEncoder, encode_file
from voxline.audio.formats import OutputSpec
from voxline.audio.levels import DEFAULT_LEVEL, LevelPolicy, apply_level
from voxline.audio.resample import Quality, Resampler
from voxline.audio.wav import wav_header

_NONE = np.zeros(0, dtype=np.int16)


class AudioPipeline:
    """Turn one response's engine chunks (mono float32 at native_rate) into encoded bytes."""

    def __init__(
        self,
        spec: OutputSpec,
        native_rate: int,
        *,
        level: LevelPolicy = DEFAULT_LEVEL,
        quality: Quality = "HQ",
    ) -> None:
        self.spec = spec
        self._level = level
        self._resampler = Resampler(native_rate, spec.sample_rate, quality)
        self._encoder = _make_encoder(spec)
        self._finished = False

    @property
    def process_id(self) -> int | None:
        """Return the ffmpeg encoder's process id, or None when encoding runs in-process."""
        return getattr(self._encoder, "pid", None)

    def header(self) -> bytes:
        """Return the bytes to send before any audio (a streaming WAV header, else empty)."""
        return self._encoder.header()

    def feed(self, chunk: np.ndarray) -> bytes:
        """Process one chunk and return the encoded bytes ready now (may be empty)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        samples = self._resampler.process(_as_mono_float(chunk))
        # soxr emits in blocks, so most 20 ms chunks yield nothing: skip converting those.
        return self._encoder.encode(apply_level(self._level, samples) if samples.size else _NONE)

    def finish(self) -> bytes:
        """Flush the resampler and the encoder and return the last bytes."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        tail = self._encoder.encode(apply_level(self._level, self._resampler.flush()))
        return tail + self._encoder.finish()

    def close(self) -> None:
        """Release the encoder (kills and reaps ffmpeg if still running); always safe."""
        self._encoder.close()

    def __enter__(self) -> AudioPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def encode_whole(
    spec: OutputSpec,
    native_rate: int,
    chunks: Iterable[np.ndarray],
    *,
    level: LevelPolicy = DEFAULT_LEVEL,
    quality: Quality = "HQ",
) -> bytes:
    """Encode a whole utterance as one complete file (WAV with exact sizes, gapless mp3)."""
    resampler = Resampler(native_rate, spec.sample_rate, quality)
    parts = [resampler.process(_as_mono_float(c)) for c in chunks]
    parts.append(resampler.flush())
    samples = apply_level(level, np.concatenate(parts))
    if spec.format in RAW_FORMATS:
        data = RawEncoder(spec.format, spec.sample_rate).encode(samples)
        return wav_header(spec.sample_rate, len(data)) + data if spec.format == "wav" else data
    return encode_file(spec.format, spec.sample_rate, samples)


def _make_encoder(spec: OutputSpec) -> Encoder:
    """Return the encoder for the spec's format."""
    if spec.format in RAW_FORMATS:
        return RawEncoder(spec.format, spec.sample_rate)
    return FfmpegEncoder(spec.format, spec.sample_rate)


def _as_mono_float(chunk: np.ndarray) -> np.ndarray:
    """Return the chunk as a 1-D contiguous float32 array; refuse integer samples."""
    if type(chunk) is np.ndarray and chunk.dtype == np.float32 and chunk.ndim == 1:
        return chunk  # the engine's usual chunk: nothing to check or copy
    arr = np.asarray(chunk)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"audio chunks must be float samples in [-1, 1], not {arr.dtype}")
    if arr.ndim == 2 and 1 in arr.shape:  # (n, 1) or (1, n): one channel
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"audio chunks must be mono (1-D), not shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)

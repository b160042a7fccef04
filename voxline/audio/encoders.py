"""Encoders that turn int16 samples into the bytes of an uncompressed output format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from voxline.audio import g711
from voxline.audio.wav import wav_header


class Encoder(Protocol):
    """What the pipeline needs from an encoder."""

    def header(self) -> bytes:
        """Return bytes that precede the audio (empty for raw formats)."""
        ...

    def encode(self, samples: np.ndarray) -> bytes:
        """Return the bytes for these int16 samples that are ready now."""
        ...

    def finish(self) -> bytes:
        """Return whatever the encoder still holds at the end of the stream."""
        ...

    def close(self) -> None:
        """Release resources; safe to call more than once."""
        ...


_RAW_ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "l16": lambda s: s.astype(">i2").tobytes(),
    "pcm": lambda s: s.astype("<i2").tobytes(),
    "wav": lambda s: s.astype("<i2").tobytes(),
    "ulaw": g711.CODEC.ulaw_encode,
    "alaw": g711.CODEC.alaw_encode,
}
RAW_FORMATS = frozenset(_RAW_ENCODERS)


class RawEncoder:
    """Stateless encoder for l16, pcm, wav (streaming header), ulaw and alaw."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self._encode = _RAW_ENCODERS[fmt]
        self._header = wav_header(sample_rate) if fmt == "wav" else b""

    def header(self) -> bytes:
        """Return the streaming WAV header for wav, else nothing."""
        return self._header

    def encode(self, samples: np.ndarray) -> bytes:
        """Return the encoded samples."""
        return self._encode(samples) if samples.size else b""

    def finish(self) -> bytes:
        """Return nothing: raw encoders hold no state."""
        return b""

    def close(self) -> None:
        """Do nothing: raw encoders hold no resources."""

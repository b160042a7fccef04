"""Stateful streaming resampling with soxr (identity when the rates already match)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

Quality = Literal["HQ", "VHQ"]

_EMPTY = np.zeros(0, dtype=np.float32)


class Resampler:
    """Resample mono float32 chunks from one rate to another, seamlessly across chunks."""

    def __init__(self, in_rate: int, out_rate: int, quality: Quality = "HQ") -> None:
        if quality not in ("HQ", "VHQ"):
            # 'QQ' and 'LQ' alias audibly; only the high-quality filters are allowed.
            raise ValueError(f"resampling quality must be HQ or VHQ, not {quality!r}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
        )

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Return the output samples that this chunk makes available."""
        if self._stream is None:
            return samples
        # A (n, 1) view skips soxr's squeeze() of 1-D input: measurable at 20 ms chunks.
        return self._stream.resample_chunk(samples[:, None])[:, 0]

    def flush(self) -> np.ndarray:
        """Return the samples still held in the filter at the end of the stream."""
        if self._stream is None:
            return _EMPTY
        return self._stream.resample_chunk(_EMPTY, last=True)

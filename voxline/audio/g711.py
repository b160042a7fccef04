"""G.711 µ-law and A-law codecs, bit-exact with CPython's ``audioop``.

The codec comes from ``audioop`` when it imports (the stdlib module up to Python 3.12, the
``audioop-lts`` backport from 3.13 on), else from a vectorised numpy implementation of the same
algorithm (Sun Microsystems' g711.c, which audioop uses). All three agree on every input.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

logger = logging.getLogger(__name__)

Encode = Callable[[np.ndarray], bytes]
Decode = Callable[[bytes], np.ndarray]


@dataclass(frozen=True)
class G711Codec:
    """A named set of µ-law/A-law encoders (int16 array → bytes) and decoders (bytes → int16)."""

    name: str
    ulaw_encode: Encode
    ulaw_decode: Decode
    alaw_encode: Encode
    alaw_decode: Decode


def _search(values: np.ndarray, ends: tuple[int, ...]) -> np.ndarray:
    """Return g711.c's segment number: the index of the first end >= value (8 if none)."""
    return np.searchsorted(np.array(ends), values, side="left")


def _ulaw_encode_table() -> np.ndarray:
    """Build the µ-law code of every int16 value, indexed by the value as uint16."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as audioop does
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 33  # clip, then add the bias (0x84 >> 2)
    seg = _search(mag, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF)) ^ mask
    return np.roll(code.astype(np.uint8), -32768)


def _ulaw_decode_table() -> np.ndarray:
    """Build the int16 value of every µ-law code."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_encode_table() -> np.ndarray:
    """Build the A-law code of every int16 value, indexed by the value as uint16."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit, as audioop does
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _search(mag, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant) ^ mask
    return np.roll(code.astype(np.uint8), -32768)


def _alaw_decode_table() -> np.ndarray:
    """Build the int16 value of every A-law code."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = t << np.maximum(seg - 1, 0)
    return np.where(a & 0x80, t, -t).astype(np.int16)


@cache
def _tables() -> dict[str, np.ndarray]:
    """Return the four lookup tables, built once on first use."""
    return {
        "ulaw_enc": _ulaw_encode_table(),
        "ulaw_dec": _ulaw_decode_table(),
        "alaw_enc": _alaw_encode_table(),
        "alaw_dec": _alaw_decode_table(),
    }


def _as_int16(samples: np.ndarray) -> np.ndarray:
    """Return the samples as a contiguous int16 array, refusing other dtypes."""
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encoding takes int16 samples, not {samples.dtype}")
    return samples


def _numpy_codec() -> G711Codec:
    """Return the vectorised numpy codec (table lookups)."""

    def encoder(table: str) -> Encode:
        return lambda s: _tables()[table][_as_int16(s).view(np.uint16)].tobytes()

    def decoder(table: str) -> Decode:
        return lambda b: _tables()[table][np.frombuffer(b, dtype=np.uint8)]

    return G711Codec(
        "numpy", encoder("ulaw_enc"), decoder("ulaw_dec"), encoder("alaw_enc"), decoder("alaw_dec")
    )


def _audioop_codec() -> G711Codec | None:
    """Return the codec backed by ``audioop`` (stdlib or audioop-lts), or None if absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # stdlib audioop on 3.11/3.12
            import audioop
    except ImportError:
        return None

    # audioop works on native-endian samples, exactly what tobytes()/frombuffer give.
    def encoder(lin2law: Callable[[bytes, int], bytes]) -> Encode:
        return lambda s: lin2law(_as_int16(s).tobytes(), 2)

    def decoder(law2lin: Callable[[bytes, int], bytes]) -> Decode:
        return lambda b: np.frombuffer(law2lin(b, 2), dtype=np.int16)

    return G711Codec(
        "audioop-lts" if sys.version_info >= (3, 13) else "audioop",
        encoder(audioop.lin2ulaw),
        decoder(audioop.ulaw2lin),
        encoder(audioop.lin2alaw),
        decoder(audioop.alaw2lin),
    )


NUMPY_CODEC = _numpy_codec()
AUDIOOP_CODEC = _audioop_codec()
CODEC = AUDIOOP_CODEC or NUMPY_CODEC
logger.debug("G.711 codec: %s", CODEC.name)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Encode int16 samples as G.711 µ-law bytes."""
    return CODEC.ulaw_encode(samples)


def ulaw_decode(data: bytes) -> np.ndarray:
    """Decode G.711 µ-law bytes to int16 samples."""
    return CODEC.ulaw_decode(data)


def alaw_encode(samples: np.ndarray) -> bytes:
    """Encode int16 samples as G.711 A-law bytes."""
    return CODEC.alaw_encode(samples)


def alaw_decode(data: bytes) -> np.ndarray:
    """Decode G.711 A-law bytes to int16 samples."""
    return CODEC.alaw_decode(data)

"""G.711 codecs: every backend is bit-exact with audioop on all inputs."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

from voxline.audio import g711

# SHA-256 of CPython 3.11 audioop's output for all 65,536 int16 inputs (little-endian, -32768
# upwards) and for the 256 codes 0..255: any backend must reproduce them bit for bit.
GOLDEN = {
    "ulaw_encode": "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a",
    "alaw_encode": "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b",
    "ulaw_decode": "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827",
    "alaw_decode": "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174",
}
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
CODECS = [g711.NUMPY_CODEC] + ([g711.AUDIOOP_CODEC] if g711.AUDIOOP_CODEC else [])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("law", ("ulaw", "alaw"))
def test_encode_all_int16_inputs(codec: g711.G711Codec, law: str) -> None:
    encoded = getattr(codec, f"{law}_encode")(ALL_INT16)
    assert len(encoded) == 65536
    assert _sha(encoded) == GOLDEN[f"{law}_encode"]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize("law", ("ulaw", "alaw"))
def test_decode_all_codes(codec: g711.G711Codec, law: str) -> None:
    decoded = getattr(codec, f"{law}_decode")(ALL_CODES)
    assert decoded.dtype == np.int16
    assert _sha(decoded.astype("<i2").tobytes()) == GOLDEN[f"{law}_decode"]


@pytest.mark.skipif(g711.AUDIOOP_CODEC is None, reason="no audioop on this Python")
@pytest.mark.parametrize("law", ("ulaw", "alaw"))
def test_numpy_matches_audioop_directly(law: str) -> None:
    ours, theirs = g711.NUMPY_CODEC, g711.AUDIOOP_CODEC
    assert getattr(ours, f"{law}_encode")(ALL_INT16) == getattr(theirs, f"{law}_encode")(ALL_INT16)
    np.testing.assert_array_equal(
        getattr(ours, f"{law}_decode")(ALL_CODES), getattr(theirs, f"{law}_decode")(ALL_CODES)
    )


def test_known_code_points() -> None:
    ulaw = g711.NUMPY_CODEC.ulaw_decode(bytes([0x00, 0x7F, 0x80, 0xFF]))
    alaw = g711.NUMPY_CODEC.alaw_decode(bytes([0x2A, 0x55, 0xAA, 0xD5]))
    assert ulaw.tolist() == [-32124, 0, 32124, 0]
    assert alaw.tolist() == [-32256, -8, 32256, 8]
    assert g711.NUMPY_CODEC.ulaw_encode(np.array([0, 32767, -32768], np.int16)) == b"\xff\x80\x00"


def test_backend_matches_python_version() -> None:
    if sys.version_info >= (3, 13):
        assert g711.CODEC.name in ("audioop-lts", "numpy")  # audioop-lts unless not installed
    else:
        assert g711.CODEC.name == "audioop"


def test_encoders_refuse_float_samples() -> None:
    with pytest.raises(TypeError, match="int16"):
        g711.NUMPY_CODEC.ulaw_encode(np.zeros(4, np.float32))

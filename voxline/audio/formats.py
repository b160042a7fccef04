"""Output formats: which rates each allows, its Content-Type, and request validation.

Content types state exactly what the bytes are:

- ``l16``: ``audio/L16; rate=R; channels=1`` (RFC 2586: signed 16-bit, big-endian).
- ``pcm``: ``audio/pcm; rate=R; channels=1`` (signed 16-bit little-endian, OpenAI's "pcm").
- ``wav``: ``audio/wav`` (RIFF header, then s16le; streamed with unknown sizes 0xFFFFFFFF).
- ``ulaw`` / ``alaw``: ``audio/PCMU; rate=8000; channels=1`` / ``audio/PCMA; ...`` (RFC 4856
  names for raw G.711; ``audio/basic`` would also fit µ-law but says nothing of the rate).
  G.711 is defined at 8000 Hz only, so no other rate is accepted.
- ``mp3``: ``audio/mpeg``; ``flac``: ``audio/flac``; ``opus``: ``audio/ogg; codecs=opus``.
  Ogg Opus always decodes at 48 kHz, so opus output is 48000 Hz only.
- ``aac``: ``audio/aac`` (AAC-LC in an ADTS stream: every frame carries its own header, so it
  streams and concatenates; OpenAI's ``aac`` is the same).

Without a requested rate, PCM-like formats and flac keep the engine's native rate when allowed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
FFMPEG_FORMATS = frozenset({"mp3", "opus", "flac", "aac"})

_ALLOWED_RATES: dict[str, tuple[int, ...]] = {
    "l16": SAMPLE_RATES,
    "pcm": SAMPLE_RATES,
    "wav": SAMPLE_RATES,
    "ulaw": (8000,),
    "alaw": (8000,),
    "mp3": SAMPLE_RATES,
    "opus": (48000,),
    "flac": SAMPLE_RATES,
    "aac": SAMPLE_RATES,
}
_ALIASES = {"mulaw": "ulaw", "pcmu": "ulaw", "pcma": "alaw", "s16le": "pcm", "ogg": "opus"}
_RATE_REASONS = {
    "ulaw": "G.711 µ-law is defined at 8000 Hz only",
    "alaw": "G.711 A-law is defined at 8000 Hz only",
    "opus": "Ogg Opus always decodes at 48000 Hz",
}


class AudioFormatError(ValueError):
    """A requested format or sample rate that the pipeline cannot produce (a client error)."""


@dataclass(frozen=True)
class OutputSpec:
    """What a response will carry: format name, sample rate and its exact Content-Type."""

    format: str
    sample_rate: int
    content_type: str
    streamable: bool = True


def content_type(fmt: str, rate: int) -> str:
    """Return the Content-Type header value for a format at a rate."""
    return {
        "l16": f"audio/L16; rate={rate}; channels=1",
        "pcm": f"audio/pcm; rate={rate}; channels=1",
        "wav": "audio/wav",
        "ulaw": f"audio/PCMU; rate={rate}; channels=1",
        "alaw": f"audio/PCMA; rate={rate}; channels=1",
        "mp3": "audio/mpeg",
        "opus": "audio/ogg; codecs=opus",
        "flac": "audio/flac",
        "aac": "audio/aac",
    }[fmt]


def resolve_output(
    fmt: str | None, sample_rate: int | None, native_rate: int, default_format: str = "l16"
) -> OutputSpec:
    """Validate a requested format and rate against the engine's rate; raise AudioFormatError."""
    name = _normalise_format(fmt or default_format)
    allowed = _ALLOWED_RATES[name]
    if sample_rate is None:
        rate = _default_rate(allowed, native_rate)
    else:
        rate = _check_rate(name, sample_rate, allowed)
    if name in FFMPEG_FORMATS and shutil.which("ffmpeg") is None:
        raise AudioFormatError(f"format {name} is not available here (ffmpeg is not installed)")
    return OutputSpec(name, rate, content_type(name, rate))


def _normalise_format(fmt: str) -> str:
    """Return the canonical format name or raise AudioFormatError listing the choices."""
    name = fmt.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in _ALLOWED_RATES:
        choices = ", ".join(_ALLOWED_RATES)
        raise AudioFormatError(f"unknown format {fmt!r}; choose one of: {choices}")
    return name


def _check_rate(name: str, sample_rate: int, allowed: tuple[int, ...]) -> int:
    """Return the requested rate if the format allows it, else raise AudioFormatError."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
        raise AudioFormatError(f"sample_rate must be an integer, not {sample_rate!r}")
    if sample_rate not in allowed:
        rates = ", ".join(str(r) for r in allowed)
        reason = _RATE_REASONS.get(name, f"{name} supports {rates} Hz")
        raise AudioFormatError(
            f"sample_rate {sample_rate} is not available for {name}: {reason} (allowed: {rates})"
        )
    return sample_rate


def _default_rate(allowed: tuple[int, ...], native_rate: int) -> int:
    """Pick the native rate when allowed, else the lowest allowed rate above it, else the top."""
    if native_rate in allowed:
        return native_rate
    higher = [r for r in allowed if r > native_rate]
    return min(higher) if higher else max(allowed)

"""Turning a request's JSON body or query string into validated synthesis parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voxline.engines.base import SynthesisParams
from voxline.server.errors import ApiError, bad_request

# name: (type, lowest, highest). Ranges are wide enough for every sane use, narrow enough that
# a typo (top_p=85) is caught instead of silently producing noise.
PARAM_RANGES: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.01, 2.0),
    "top_k": (int, 1, 1000),
    "top_p": (float, 0.01, 1.0),
    "repetition_penalty": (float, 1.0, 50.0),
    "length_penalty": (float, -10.0, 10.0),
    "speed": (float, 0.25, 4.0),
    "stream_chunk_size": (int, 1, 400),
    "seed": (int, 0, 2**32 - 1),
    "min_new_tokens": (int, 1, 2000),
    "max_new_tokens": (int, 1, 2000),
}
TEXT_FIELDS = ("text", "speaker", "language", "format")
INT_FIELDS = ("sample_rate",)
KNOWN_FIELDS = frozenset(TEXT_FIELDS) | frozenset(INT_FIELDS) | frozenset(PARAM_RANGES)


@dataclass(frozen=True)
class TtsRequest:
    """One validated synthesis request (speaker and language still to be checked by name)."""

    text: str
    speaker: str | None
    language: str | None
    format: str | None
    sample_rate: int | None
    params: SynthesisParams


def parse_tts_request(
    data: Mapping[str, Any], *, from_query: bool, max_chars: int, defaults: SynthesisParams
) -> TtsRequest:
    """Validate fields by type and range; raise ApiError with a message naming the field."""
    unknown = sorted(k for k in data if k not in KNOWN_FIELDS and not k.startswith("_"))
    if unknown:
        raise bad_request("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}")
    strings = {name: _string(data, name) for name in TEXT_FIELDS}
    text = strings["text"]
    if text is None or not text.strip():
        raise bad_request("missing_text", "text is required and must not be empty")
    text = text.strip()
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long", f"text has {len(text)} characters; the limit is "
                                             f"{max_chars}")
    sample_rate = _number(data, "sample_rate", int, from_query)
    overrides = {}
    for name, (kind, low, high) in PARAM_RANGES.items():
        value = _number(data, name, kind, from_query)
        if value is None:
            continue
        if not low <= value <= high:
            raise bad_request("invalid_parameter", f"{name}={value} is outside {low}..{high}")
        overrides[name] = value
    params = dataclasses.replace(defaults, **overrides)
    if (params.min_new_tokens or 0) > (params.max_new_tokens or 10**9):
        raise bad_request("invalid_parameter", "min_new_tokens exceeds max_new_tokens")
    return TtsRequest(
        text=text, speaker=strings["speaker"], language=strings["language"],
        format=strings["format"], sample_rate=sample_rate, params=params,
    )


def _string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("invalid_parameter", f"{name} must be a string")
    if "\ufffd" in value:
        raise bad_request("invalid_encoding", f"{name} is not valid UTF-8")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise bad_request("invalid_parameter", f"{name} contains control characters")
    return value


def _number(data: Mapping[str, Any], name: str, kind: type, from_query: bool) -> Any:
    value = data.get(name)
    if value is None or (from_query and value == ""):
        return None
    if from_query and isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise bad_request("invalid_parameter", f"{name} must be a {kind.__name__}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request("invalid_parameter", f"{name} must be a {kind.__name__}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad_request("invalid_parameter", f"{name} must be an integer")
        return int(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise bad_request("invalid_parameter", f"{name} must be a finite number")
    return float(value)

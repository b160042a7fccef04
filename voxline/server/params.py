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
# `cache: false` skips the phrase cache for one request (neither read nor written).
FLAG_FIELDS = ("cache",)
KNOWN_FIELDS = (
    frozenset(TEXT_FIELDS) | frozenset(INT_FIELDS) | frozenset(FLAG_FIELDS)
    | frozenset(PARAM_RANGES)
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class TtsRequest:
    """One validated synthesis request (speaker and language still to be checked by name)."""

    text: str
    speaker: str | None
    language: str | None
    format: str | None
    sample_rate: int | None
    params: SynthesisParams
    cache: bool = True


def parse_tts_request(
    data: Mapping[str, Any], *, from_query: bool, max_chars: int, defaults: SynthesisParams
) -> TtsRequest:
    """Validate fields by type and range; raise ApiError with a message naming the field."""
    unknown = sorted(k for k in data if k not in KNOWN_FIELDS and not k.startswith("_"))
    if unknown:
        raise bad_request("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}",
                          param=unknown[0])
    strings = {name: _string(data, name) for name in TEXT_FIELDS}
    text = strings["text"]
    if text is None or not text.strip():
        raise bad_request("missing_text", "text is required and must not be empty", param="text")
    text = text.strip()
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long",
                       f"text has {len(text)} characters; the limit is {max_chars}", param="text")
    sample_rate = _number(data, "sample_rate", int, from_query)
    overrides = {}
    for name, (kind, low, high) in PARAM_RANGES.items():
        value = _number(data, name, kind, from_query)
        if value is None:
            continue
        if not low <= value <= high:
            raise bad_request("invalid_parameter", f"{name}={value} is outside {low}..{high}",
                              param=name)
        overrides[name] = value
    params = dataclasses.replace(defaults, **overrides)
    if (params.min_new_tokens or 0) > (params.max_new_tokens or 10**9):
        raise bad_request("invalid_parameter", "min_new_tokens exceeds max_new_tokens",
                          param="min_new_tokens")
    cache = _flag(data, "cache", from_query)
    return TtsRequest(
        text=text, speaker=strings["speaker"], language=strings["language"],
        format=strings["format"], sample_rate=sample_rate, params=params,
        cache=True if cache is None else cache,
    )


def _string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("invalid_parameter", f"{name} must be a string", param=name)
    if "\ufffd" in value:
        raise bad_request("invalid_encoding", f"{name} is not valid UTF-8", param=name)
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise bad_request("invalid_parameter", f"{name} contains control characters", param=name)
    return value


def _flag(data: Mapping[str, Any], name: str, from_query: bool) -> bool | None:
    value = data.get(name)
    if value is None or (from_query and value == ""):
        return None
    if isinstance(value, bool):
        return value
    if from_query and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise bad_request("invalid_parameter", f"{name} must be true or false", param=name)


def _number(data: Mapping[str, Any], name: str, kind: type, from_query: bool) -> Any:
    value = data.get(name)
    if value is None or (from_query and value == ""):
        return None
    if from_query and isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise bad_request("invalid_parameter", f"{name} must be a {kind.__name__}",
                              param=name) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request("invalid_parameter", f"{name} must be a {kind.__name__}", param=name)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad_request("invalid_parameter", f"{name} must be an integer", param=name)
        return int(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise bad_request("invalid_parameter", f"{name} must be a finite number", param=name)
    return float(value)

"""Reading a JSON request body as hostile input: size, nesting and string checks.

Python's json module recurses once per nesting level (deep input raises RecursionError) and
accepts lone surrogate escapes ("\\ud800") that no encoder can write back out, so the depth is
measured on the raw bytes before parsing and every string (keys too) is checked after.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from voxline.server.errors import ApiError, bad_request

MAX_DEPTH = 8  # the deepest legitimate body (coqui latents) nests 2 levels
MAX_BODY_BYTES = 4_000_000  # coqui latents as JSON text are about 0.7 MB
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def read_json_object(request: Request) -> dict[str, Any]:
    """A Flask request's body as a JSON object, its size bounded before it is read."""
    too_large = ApiError(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    request.max_content_length = MAX_BODY_BYTES  # bodies without a length (chunked)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large from None
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; ApiError 400/413 for anything else."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large",
                       f"the body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    if nesting_depth(raw) > MAX_DEPTH:
        raise bad_request("invalid_json", f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    check_strings(data)
    return data


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting outside strings (regex scans, no recursion)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_strings(value: Any, field: str | None = None) -> None:
    """Raise 400 `invalid_encoding` for any string holding a lone surrogate."""
    stack = [(value, field)]
    while stack:
        item, name = stack.pop()
        if isinstance(item, str):
            _check_text(item, name)
        elif isinstance(item, dict):
            for key, sub in item.items():
                _check_text(key, name or key)
                stack.append((sub, name or key))
        elif isinstance(item, list):
            stack.extend((sub, name) for sub in item)


def _check_text(text: str, field: str | None) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where = f"{field} is" if field else "the body holds"
        raise bad_request("invalid_encoding", f"{where} not valid Unicode (lone surrogate)",
                          param=field) from None

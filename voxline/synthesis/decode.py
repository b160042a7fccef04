"""One decoder for every JSON a client sends: HTTP bodies and realtime session messages alike.

Python's json module recurses once per nesting level (deep input raises RecursionError, and in
a worker thread it can take the process down), accepts lone surrogate escapes ("\\ud800") that
no encoder can write back out, and turns `1e999` into infinity. So the size and depth are
measured on the raw text before parsing, numbers must be finite, and every string (keys too) is
checked after.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from voxline.synthesis.errors import InvalidRequest, TooLarge

MAX_DEPTH = 8  # the deepest legitimate body (coqui latents) nests 2 levels
MAX_BYTES = 4_000_000  # coqui latents as JSON text are about 0.7 MB
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def decode_object(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                  what: str = "the body") -> dict[str, Any]:
    """`raw` as a JSON object; InvalidRequest (`invalid_json`, `invalid_encoding`) or TooLarge
    (`body_too_large`) for anything else. Never raises anything but those."""
    if len(raw) > max_bytes:
        raise TooLarge("body_too_large", f"{what} has {len(raw)} bytes; the limit is {max_bytes}")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("invalid_encoding", f"{what} is not valid UTF-8") from None
    if nesting_depth(raw) > max_depth:
        raise InvalidRequest("invalid_json", f"{what} nests deeper than {max_depth} levels")
    try:
        data = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise InvalidRequest("invalid_json", f"{what} holds a number that is not finite "
                             f"({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("invalid_json", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("invalid_json", f"{what} must be a JSON object")
    check_strings(data)
    return data


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text[:32])
    return value


def _no_constant(name: str) -> float:
    raise _NotFinite(name)


def nesting_depth(raw: str) -> int:
    """The deepest bracket nesting outside strings (regex scans, no recursion)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', raw)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_strings(value: Any, field: str | None = None) -> None:
    """InvalidRequest `invalid_encoding` for any string (or key) holding a lone surrogate."""
    stack = [(value, field)]
    while stack:
        item, name = stack.pop()
        if isinstance(item, str):
            check_text(item, name)
        elif isinstance(item, dict):
            for key, sub in item.items():
                check_text(key, name or key)
                stack.append((sub, name or key))
        elif isinstance(item, list):
            stack.extend((sub, name) for sub in item)


def check_text(text: str, field: str | None) -> None:
    """InvalidRequest `invalid_encoding` if `text` holds a lone surrogate; the field is named
    only when it can itself be written back out."""
    if _encodable(text):
        return
    field = field if field and field.isprintable() and _encodable(field) else None
    where = f"{field} is" if field else "the body holds"
    raise InvalidRequest("invalid_encoding", f"{where} not valid Unicode (lone surrogate)",
                         param=field)


def _encodable(text: str) -> bool:
    """Whether `text` can be written back out (a message naming it must never fail to send)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

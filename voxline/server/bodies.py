"""Reading a request's JSON body: its size bounded before it is read, then the core's decoder
(the same one every realtime session message goes through)."""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from voxline.synthesis.decode import MAX_BYTES, decode_object
from voxline.synthesis.errors import TooLarge


def read_json_object(request: Request) -> dict[str, Any]:
    """A Flask request's body as a JSON object (domain errors for anything else)."""
    too_large = TooLarge("body_too_large", f"the body exceeds {MAX_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise too_large
    request.max_content_length = MAX_BYTES  # bodies without a length (chunked)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large from None
    return decode_object(raw)

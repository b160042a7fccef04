"""OpenAI's server-sent events for speech: audio bytes in, `speech.audio.*` events out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import Response

CONTENT_TYPE = "text/event-stream"


def event(payload: Mapping[str, Any]) -> bytes:
    """One SSE event carrying a JSON payload."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def sse_events(chunks: Iterable[bytes], usage: Mapping[str, int]) -> Iterator[bytes]:
    """`speech.audio.delta` per non-empty chunk, then `speech.audio.done` with `usage`."""
    try:
        for chunk in chunks:
            if chunk:
                yield event(
                    {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")}
                )
        yield event({"type": "speech.audio.done", "usage": dict(usage)})
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def usage_for(text: str) -> dict[str, int]:
    """OpenAI's usage fields. Voxline counts no tokens: input_tokens are characters."""
    return {"input_tokens": len(text), "output_tokens": 0, "total_tokens": len(text)}


def as_sse(response: Response, usage: Mapping[str, int]) -> Response:
    """The same audio response, its body re-framed as events (headers kept)."""
    response.response = sse_events(response.response, usage)
    response.headers.pop("Content-Length", None)
    response.content_type = CONTENT_TYPE
    response.direct_passthrough = True
    return response

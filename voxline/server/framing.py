"""How a response frames a render's parts: OpenAI's server-sent events, or one JSON document
with the audio and its word timings (`POST /tts` with `timestamps: true`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from voxline.audio import OutputSpec
from voxline.tape import Part


def event(payload: Mapping[str, Any]) -> bytes:
    """One SSE event carrying a JSON payload."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def usage_for(text: str) -> dict[str, int]:
    """OpenAI's usage fields. Voxline counts no tokens: input_tokens are characters."""
    return {"input_tokens": len(text), "output_tokens": 0, "total_tokens": len(text)}


def describe_words(parts_words) -> list[dict[str, Any]]:
    return [w.describe() for w in parts_words]


class SseEvents:
    """`speech.audio.delta` per part with audio, `speech.words` per part with words (only when
    asked: OpenAI clients see exactly OpenAI's events), then `speech.audio.done` with usage."""

    content_type = "text/event-stream"

    def __init__(self, usage: Mapping[str, int], timestamps: bool = False) -> None:
        self.usage = dict(usage)
        self.timestamps = timestamps

    def part(self, part: Part) -> bytes:
        out = b""
        if part.data:
            out += event({"type": "speech.audio.delta",
                          "audio": base64.b64encode(part.data).decode("ascii")})
        if self.timestamps and part.words:
            out += event({"type": "speech.words", "words": describe_words(part.words)})
        return out

    def end(self) -> bytes:
        return event({"type": "speech.audio.done", "usage": self.usage})


class TimedJson:
    """The whole audio in base64 and every word, as one JSON document."""

    content_type = "application/json"

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.audio = bytearray()
        self.words: list = []

    def part(self, part: Part) -> bytes:
        self.audio += part.data
        self.words.extend(part.words)
        return b""

    def end(self) -> bytes:
        return json.dumps({
            "audio": base64.b64encode(bytes(self.audio)).decode("ascii"),
            "format": self.spec.format,
            "sample_rate": self.spec.sample_rate,
            "words": describe_words(self.words),
        }).encode()

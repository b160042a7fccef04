"""The session API on the client side, in one place: its URL, handshake headers and messages
(used by `Session` and the framework plugins)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

STREAM_PATH = "/v1/audio/speech/stream"


def stream_url(base_url: str) -> str:
    """The session websocket URL of a server given as http(s)://HOST:PORT[/prefix]."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + STREAM_PATH, "", ""))


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The handshake headers for an API key (none when the server is open)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def update(settings: dict[str, Any]) -> dict[str, Any]:
    """A `session.update` changing exactly `settings`."""
    return {"type": "session.update", "session": settings}


def session_update(**settings: Any) -> dict[str, Any]:
    """The plugins' `session.update`: pcm audio and the settings that are set (None means the
    server's default)."""
    fields = {name: value for name, value in settings.items() if value is not None}
    return update({"format": "pcm", **fields})


def append(context_id: str, text: str) -> dict[str, Any]:
    return {"type": "input_text.append", "context_id": context_id, "text": text}


def flush(context_id: str) -> dict[str, Any]:
    return {"type": "input_text.flush", "context_id": context_id}


def end(context_id: str) -> dict[str, Any]:
    return {"type": "input_text.end", "context_id": context_id}


def cancel(context_id: str) -> dict[str, Any]:
    return {"type": "context.cancel", "context_id": context_id}


def error_fields(message: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a server `error` message."""
    error = message.get("error") or {}
    return error.get("code", "error"), error.get("message", "unknown error")


def error_text(message: dict[str, Any]) -> str:
    """`code: message` of a server `error` message."""
    code, text = error_fields(message)
    return f"{code}: {text}"


@dataclass(frozen=True)
class SpokenText:
    """A stretch of the client's text and when it was spoken (seconds on the context's audio
    timeline). `text` is the word as the client wrote it, with the text before it that no
    word covers (spaces, skipped symbols) in front."""

    text: str
    start_s: float
    end_s: float

    @property
    def word(self) -> str:
        return self.text.strip()


class ContextText:
    """One context's text as the client sent it, turned into timed stretches as the server's
    `speech.words` arrive. A source span spoken as several words ("$5": "five", "dollars")
    is one stretch, from its first word's start to its last word's end."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.cursor = 0  # the end of the text already handed out as stretches

    def append(self, delta: str) -> None:
        self.text += delta

    def spoken(self, words: list[dict[str, Any]]) -> list[SpokenText]:
        """The stretches of a `speech.words` message's words, in order."""
        spans: list[tuple[int, float, float]] = []
        for word in words:
            end = int(word["text_end"])
            if end <= self.cursor:  # a later word of a span already handed out
                continue
            start_s, end_s = word["start_ms"] / 1000, word["end_ms"] / 1000
            if spans and spans[-1][0] == end:
                start_s = spans[-1][1]
                spans.pop()
            spans.append((end, start_s, end_s))
        stretches = []
        for end, start_s, end_s in spans:
            if end <= self.cursor:
                continue
            stretches.append(SpokenText(self.text[self.cursor : end], start_s, end_s))
            self.cursor = end
        return stretches

    def rest(self, at_s: float) -> SpokenText | None:
        """What is left after the last word (closing punctuation, spaces), timed at `at_s`."""
        if self.cursor >= len(self.text):
            return None
        stretch = SpokenText(self.text[self.cursor :], at_s, at_s)
        self.cursor = len(self.text)
        return stretch

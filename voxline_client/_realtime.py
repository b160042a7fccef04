"""The session API on the client side, in one place: its URL, handshake headers and messages
(used by `Session` and the framework plugins)."""

from __future__ import annotations

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

"""A realtime speech session (`GET /v1/audio/speech/stream`): send text deltas, iterate audio,
cancel. Needs the `websockets` package (the `session` extra); the rest of the client does not.

    from voxline_client.session import Session
    with Session("http://127.0.0.1:8020", format="pcm") as session:
        for token in llm_tokens:
            session.append(token)
        session.end()
        for chunk in session.audio():        # bytes in the session's format, until done
            player.write(chunk)
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from voxline_client import _realtime as proto
from voxline_client.client import VoxlineError

DEFAULT_CONTEXT = "default"
_FINAL = ("speech.audio.done", "context.cancelled")


class VoxlineSessionError(VoxlineError):
    """The server answered a session message with an `error` (`code`, `message`); a `busy`
    one may say after how many seconds the request would fit (`retry_after`)."""

    def __init__(self, code: str, message: str, context_id: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.context_id = context_id
        self.retry_after = retry_after

    @classmethod
    def from_message(cls, message: dict[str, Any], context_id: str | None = None
                     ) -> VoxlineSessionError:
        """The error a server `error` message reports."""
        wait = (message.get("error") or {}).get("retry_after")
        number = isinstance(wait, (int, float)) and not isinstance(wait, bool)
        return cls(*proto.error_fields(message), context_id, float(wait) if number else None)


class _Context:
    """What the reader thread has received for one context id."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.segments: list[dict[str, Any]] = []
        self.words: list[dict[str, Any]] = []
        self.cancelled = threading.Event()
        self.ack: dict[str, Any] | None = None


class Session:
    """One websocket session; thread-safe sends, one reader thread routing replies."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = 30.0, **settings: Any
    ) -> None:
        from websockets.sync.client import connect

        self.timeout = timeout
        # Entered as a context manager: websockets >= 17.1 warns about direct use otherwise.
        self._ws = connect(
            proto.stream_url(url),
            additional_headers=proto.auth_headers(api_key),
            open_timeout=timeout,
            close_timeout=5,
        ).__enter__()
        self._lock = threading.Lock()
        self._contexts: dict[str, _Context] = {}
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.closed: tuple[int | None, str] | None = None
        self._finished: dict[str, _Context] = {}
        created = json.loads(self._ws.recv(timeout))
        if created.get("type") == "error":  # e.g. busy, before a close with 1013
            self._ws.close()
            raise VoxlineSessionError.from_message(created)
        if created.get("type") != "session.created":
            raise VoxlineSessionError("protocol", f"expected session.created, got {created}")
        self.settings: dict[str, Any] = created["session"]
        threading.Thread(target=self._read, name="voxline-session", daemon=True).start()
        if settings:
            self.update(**settings)

    # Sending ----------------------------------------------------------------------------------

    def update(self, **settings: Any) -> dict[str, Any]:
        """Change settings (voice, format, ...); returns the effective ones or raises."""
        self._send(proto.update(settings))
        reply = self._reply()
        self.settings = reply["session"]
        return self.settings

    def append(self, text: str, context_id: str = DEFAULT_CONTEXT) -> None:
        """Add a text delta (you own the spacing: send " world", not "world")."""
        self._context(context_id)
        self._send(proto.append(context_id, text))

    def flush(self, context_id: str = DEFAULT_CONTEXT) -> None:
        """Synthesise what is buffered now."""
        self._send(proto.flush(context_id))

    def end(self, context_id: str = DEFAULT_CONTEXT) -> None:
        """No more text for this context: its audio ends with `speech.audio.done`."""
        self._context(context_id)
        self._send(proto.end(context_id))

    def cancel(self, context_id: str = DEFAULT_CONTEXT) -> dict[str, Any]:
        """Barge-in: stop the context; returns the ack (`audio_ms`, `segments`, and the `words`
        and `heard_text` of the audio sent)."""
        context = self._context(context_id)
        self._send(proto.cancel(context_id))
        if not context.cancelled.wait(self.timeout):
            raise VoxlineSessionError("timeout", "no context.cancelled from the server", context_id)
        assert context.ack is not None
        return context.ack

    # Receiving --------------------------------------------------------------------------------

    def events(self, context_id: str = DEFAULT_CONTEXT) -> Iterator[dict[str, Any]]:
        """The context's messages (deltas, segments) up to its done or cancelled message."""
        context = self._context(context_id)
        while True:
            try:
                event = context.events.get(timeout=self.timeout)
            except queue.Empty:
                raise VoxlineSessionError(
                    "timeout", "no audio from the server in time", context_id
                ) from None
            if event["type"] == "error":
                raise VoxlineSessionError.from_message(event, context_id)
            yield event
            if event["type"] in _FINAL or event["type"] == "session.closed":
                self._forget(context_id, context)
                return

    def audio(self, context_id: str = DEFAULT_CONTEXT) -> Iterator[bytes]:
        """The context's audio bytes as they arrive, until it is done or cancelled."""
        for event in self.events(context_id):
            if event["type"] == "speech.audio.delta":
                yield base64.b64decode(event["audio"])

    def segments(self, context_id: str = DEFAULT_CONTEXT) -> list[dict[str, Any]]:
        """The `speech.segment` messages received so far for the context."""
        with self._lock:
            context = self._contexts.get(context_id) or self._finished.get(context_id)
        return list(context.segments) if context else []

    def words(self, context_id: str = DEFAULT_CONTEXT) -> list[dict[str, Any]]:
        """The words of the `speech.words` messages received so far for the context (`word`,
        `start_ms`, `end_ms`, `text_start`, `text_end`: offsets into the text you appended)."""
        with self._lock:
            context = self._contexts.get(context_id) or self._finished.get(context_id)
        return list(context.words) if context else []

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Internals --------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._ws.send(json.dumps(message))

    def _reply(self) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=self.timeout)
        except queue.Empty:
            raise VoxlineSessionError("timeout", "no reply from the server in time") from None
        if reply["type"] == "error":
            raise VoxlineSessionError.from_message(reply)
        return reply

    def _context(self, context_id: str) -> _Context:
        with self._lock:
            context = self._contexts.get(context_id)
            if context is None:
                context = self._contexts[context_id] = _Context()
            return context

    def _forget(self, context_id: str, context: _Context) -> None:
        with self._lock:
            if self._contexts.get(context_id) is context:
                del self._contexts[context_id]
                self._finished[context_id] = context

    def _read(self) -> None:
        """Route every server message to its context, or to the session's replies."""
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self._ws:
                self._route(json.loads(raw))
        except ConnectionClosed:
            pass
        self.closed = (self._ws.close_code, self._ws.close_reason or "connection lost")
        closed = {"type": "session.closed", "code": self.closed[0], "reason": self.closed[1]}
        self._replies.put(
            {"type": "error", "error": {"code": "closed", "message": str(self.closed)}}
        )
        with self._lock:
            for context in self._contexts.values():
                context.events.put(closed)

    def _route(self, message: dict[str, Any]) -> None:
        context_id = message.get("context_id")
        if context_id is None or message["type"] == "session.updated":
            self._replies.put(message)
            return
        context = self._context(context_id)
        if message["type"] == "speech.segment":
            context.segments.append(message)
        if message["type"] == "speech.words":
            context.words.extend(message["words"])
        if message["type"] == "context.cancelled":
            context.ack = message
            context.cancelled.set()
        context.events.put(message)

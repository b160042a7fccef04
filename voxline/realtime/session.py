"""A realtime speech session: JSON messages in, audio deltas out, independent of the transport.

The websocket route (or a test) feeds every client message to `Session.handle` and gives the
session a `send` function for text frames; the session answers, runs its contexts, and sets
`closing` (code, reason) when the transport should close.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from voxline.realtime.context import Context, Segment
from voxline.realtime.synth import SessionError, SessionSettings, Synthesis
from voxline.synthesis.decode import decode_object
from voxline.synthesis.errors import RequestError
from voxline.synthesis.request import string_field

logger = logging.getLogger(__name__)
DEFAULT_CONTEXT = "default"
_CONTEXT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CLOSE_NORMAL = 1000
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
MAX_MESSAGE_BYTES = 1 << 20
MAX_MESSAGE_DEPTH = 4  # {"type": "session.update", "session": {...}} nests 2


class SessionLimit:
    """Counts open sessions against a maximum (thread-safe)."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.open = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.open >= self.maximum:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


class Session:
    """One client's session: settings, contexts by id, and the ordered stream of messages."""

    def __init__(
        self,
        synth: Synthesis,
        send: Callable[[str], None],
        *,
        max_contexts: int = 4,
        max_chars: int = 5000,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.synth = synth
        self.lock = threading.RLock()  # every outgoing message is sent under it
        self.max_contexts = max_contexts
        self.max_chars = max_chars
        self.settings: SessionSettings = synth.defaults()
        self.contexts: dict[str, Context] = {}
        self.closing: tuple[int, str] | None = None
        self.last_message = time.monotonic()
        self._send = send
        self._dead = False

    # Transport side ---------------------------------------------------------------------------

    def start(self) -> None:
        self.send({"type": "session.created", "session": self._describe()})

    def handle(self, raw: str | bytes) -> None:
        """Act on one client message; a bad one gets an `error` and the session goes on."""
        self.last_message = time.monotonic()
        message: Any = None
        try:
            message = _decode(raw)
            kind = message.get("type")
            handler = self._handlers().get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise SessionError("unknown_type", f"unknown message type {str(kind)[:64]!r}")
            handler(message)
        except (SessionError, RequestError) as exc:
            context = message.get("context_id") if isinstance(message, dict) else None
            error = exc if isinstance(exc, SessionError) else SessionError(exc.code, exc.message)
            self.send_error(error, context if isinstance(context, str) else None)
        except Exception:
            logger.exception("session %s: a message failed unexpectedly", self.id[:8])
            self.send_error(SessionError("internal_error", "the server failed on this message"))
            self.closing = (CLOSE_INTERNAL_ERROR, "internal error")

    def idle_s(self) -> float:
        """Seconds without a client message and without audio in progress."""
        with self.lock:
            if self.contexts:
                return 0.0
        return time.monotonic() - self.last_message

    def close(self) -> None:
        """The transport is gone: stop every context, send nothing more."""
        with self.lock:
            self._dead = True
            for context in list(self.contexts.values()):
                context.cancel()
            self.contexts.clear()

    # Messages ---------------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[dict], None]]:
        return {
            "session.update": self._update,
            "input_text.append": self._append,
            "input_text.flush": self._flush,
            "input_text.end": self._end,
            "context.cancel": self._cancel,
        }

    def _update(self, message: dict) -> None:
        changes = message.get("session")
        if not isinstance(changes, dict):
            raise SessionError("invalid_message", "session.update needs a 'session' object")
        self.settings = self.synth.update(self.settings, changes)
        self.send({"type": "session.updated", "session": self._describe()})

    def _append(self, message: dict) -> None:
        if not isinstance(message.get("text"), str):
            raise SessionError("invalid_message", "input_text.append needs a 'text' string")
        text = string_field(message, "text")
        context_id = _context_id(message)
        with self.lock:
            context = self.contexts.get(context_id)
            if context is None:
                context = self._open_context(context_id)
        if context.ended:
            raise SessionError(
                "context_ended",
                f"context {context_id!r} has ended; wait for "
                "speech.audio.done or use a new context_id",
            )
        context.append(text, self.max_chars)

    def _flush(self, message: dict) -> None:
        context = self.contexts.get(_context_id(message))
        if context is not None:
            context.flush()

    def _end(self, message: dict) -> None:
        context_id = _context_id(message)
        context = self.contexts.get(context_id)
        if context is None:
            self.send(
                {
                    "type": "speech.audio.done",
                    "context_id": context_id,
                    "audio_ms": 0,
                    "segments": [],
                }
            )
            return
        context.end()

    def _cancel(self, message: dict) -> None:
        context_id = _context_id(message)
        played = message.get("played_ms")
        if played is not None and (isinstance(played, bool) or not isinstance(
                played, (int, float)) or played < 0):
            raise SessionError("invalid_parameter", "played_ms must be a number >= 0")
        with self.lock:
            context = self.contexts.pop(context_id, None)
            summary = (
                context.cancel(played)
                if context
                else {"context_id": context_id, "audio_ms": 0, "segments": []}
            )
            self.send_locked({"type": "context.cancelled", **summary})

    def _open_context(self, context_id: str) -> Context:
        if len(self.contexts) >= self.max_contexts:
            raise SessionError(
                "too_many_contexts",
                f"at most {self.max_contexts} contexts may be open; end or cancel one first",
            )
        context = Context(self, context_id, self.settings)
        self.contexts[context_id] = context
        context.start()
        return context

    # Called by contexts -----------------------------------------------------------------------

    def segment_done(self, context: Context, segment: Segment) -> None:
        with self.lock:
            if context.cancelled:
                return
            segment.complete = True
            self.send_locked(
                {"type": "speech.segment", "context_id": context.id, **segment.describe()}
            )

    def segment_error(self, context: Context, error: SessionError) -> None:
        with self.lock:
            if context.cancelled:
                return
            self.send_error(error, context.id)
            if error.code == "busy":
                self.closing = (CLOSE_TRY_AGAIN, "server busy")
                self.close()

    def context_done(self, context: Context) -> None:
        with self.lock:
            if context.cancelled:
                return
            if self.contexts.get(context.id) is context:
                del self.contexts[context.id]
            self.send_locked({"type": "speech.audio.done", **context.summary()})

    def context_failed(self, context: Context) -> None:
        with self.lock:
            if self.contexts.get(context.id) is context:
                del self.contexts[context.id]
            if not context.cancelled:
                context.cancelled = True
                self.send_error(SessionError("internal_error", "the context failed"), context.id)

    # Sending ----------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.send_locked(message)

    def send_locked(self, message: dict[str, Any]) -> None:
        """Send one message (the lock held); a failed send ends the session quietly."""
        if self._dead:
            return
        try:
            self._send(json.dumps(message, ensure_ascii=False))
        except Exception as exc:
            logger.info("session %s: send failed (%s); closing", self.id[:8], exc)
            self.close()

    def send_error(self, error: SessionError, context_id: str | None = None) -> None:
        message: dict[str, Any] = {
            "type": "error",
            "error": {"code": error.code, "message": error.message},
        }
        if error.retry_after is not None:
            message["error"]["retry_after"] = error.retry_after
        if context_id is not None:
            message["context_id"] = context_id
        self.send(message)

    def _describe(self) -> dict[str, Any]:
        return {"id": self.id, **self.settings.as_dict(), "max_contexts": self.max_contexts}


def _decode(raw: str | bytes) -> dict:
    """A message through the core's decoder (size, depth, encoding, finite numbers)."""
    if not isinstance(raw, str):
        raise SessionError("invalid_message", "send JSON text frames, not binary frames")
    return decode_object(raw, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_MESSAGE_DEPTH,
                         what="the message")


def _context_id(message: dict) -> str:
    context_id = message.get("context_id", DEFAULT_CONTEXT)
    if context_id is None:
        return DEFAULT_CONTEXT
    if not isinstance(context_id, str) or not _CONTEXT_ID.match(context_id):
        raise SessionError(
            "invalid_context_id", "context_id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
        )
    return context_id

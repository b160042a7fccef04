"""One AudioSocket call: paced 20 ms output from a say queue, DTMF and hang-up events."""

from __future__ import annotations

import collections
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from telephony.voxagi.client import PCM_TYPES, TtsError, TtsRequest, build_query
from telephony.voxagi.config import Settings
from telephony.voxagi.heard import heard_end

from .protocol import FRAME_BYTES, FRAME_MS, KIND_HANGUP, KIND_SLIN, encode
from .session import CLIENT_TYPES, SessionBridge, session_settings

logger = logging.getLogger(__name__)

SILENCE = bytes(FRAME_BYTES)
_MAX_EVENTS = 1000
_RESYNC_S = 0.2
_EVENT_FIELDS = ("seq", "time", "type")  # what every event carries


@dataclass
class Utterance:
    """Text queued for speaking on a call."""

    id: int
    text: str
    voice: str
    language: str


@dataclass
class _Segment:
    """The audio of one utterance: filled by the synthesis worker, drained by the pacer."""

    utterance: Utterance
    audio: bytearray = field(default_factory=bytearray)
    complete: bool = False
    started: bool = False
    context_id: str | None = None  # set for audio from the realtime session
    played: int = 0  # bytes sent to Asterisk


class Call:
    """One connected call; a pacer thread sends frames, a worker thread synthesises."""

    def __init__(
        self, call_id: str, sock: socket.socket, settings: Settings, prebuffer_ms: int = 60
    ) -> None:
        self.id = call_id
        self.sock = sock
        self.settings = settings
        self.prebuffer = max(FRAME_BYTES, prebuffer_ms * 16)
        self.started_at = time.time()
        self.closed = threading.Event()
        self.frames_sent = 0
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._queue: collections.deque[Utterance] = collections.deque()
        self._segments: collections.deque[_Segment] = collections.deque()
        self._request: TtsRequest | None = None
        self._ids = itertools.count(1)
        self._events: list[dict[str, object]] = []
        self._event_seq = 0
        self._session: SessionBridge | None = None
        self._contexts: dict[str, _Segment] = {}  # open session contexts, by id

    def start(self) -> None:
        """Start the pacer and the synthesis worker."""
        threading.Thread(target=self._pace, name=f"as-pace-{self.id[:8]}", daemon=True).start()
        threading.Thread(target=self._work, name=f"as-tts-{self.id[:8]}", daemon=True).start()

    # Control side ----------------------------------------------------------------------------
    def say(self, text: str, voice: str = "", language: str = "") -> int:
        """Queue text to speak after what is queued already; returns the utterance id."""
        utterance = Utterance(
            next(self._ids), text, voice or self.settings.voice, language or self.settings.language
        )
        with self._lock:
            if self.closed.is_set():
                raise ConnectionError("call has ended")
            self._queue.append(utterance)
            self._lock.notify_all()
        return utterance.id

    def session_message(self, message: dict) -> dict[str, object] | None:
        """Forward a realtime session message (append / flush / end / cancel) to the server;
        its audio plays in context order after what is queued, its replies become events.

        A cancel waits for the server's `context.cancelled` and returns it, narrowed to what
        the caller heard (None if it does not come within the first-byte timeout).
        """
        kind = message.get("type")
        if kind not in CLIENT_TYPES:
            raise ValueError(f"type must be one of {', '.join(CLIENT_TYPES)}")
        context_id = str(message.get("context_id") or "default")
        message = {**message, "context_id": context_id}
        session = self._open_session()
        with self._lock:
            if self.closed.is_set():
                raise ConnectionError("call has ended")
            if kind == "input_text.append" and context_id not in self._contexts:
                self._open_context(context_id)
            segment = self._contexts.get(context_id)
            if kind == "context.cancel" and segment is not None:
                self._stop_context(segment)
            elif kind == "input_text.append" and segment is not None:
                segment.utterance.text += str(message.get("text") or "")
            since = self._event_seq
        session.send(message)
        if kind != "context.cancel":
            return None
        wait = self.settings.first_byte_timeout
        return self._wait_event("context.cancelled", context_id, since, wait)

    def flush(self) -> int:
        """Stop speaking at once and drop everything queued (barge-in); returns the count."""
        with self._lock:
            return self._drop()

    def hangup(self) -> None:
        """Ask Asterisk to hang up the call."""
        self._send(encode(KIND_HANGUP))

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary for the calls list."""
        with self._lock:
            head = self._segments[0] if self._segments else None
            return {
                "id": self.id,
                "speaking": head.utterance.id if head and head.started else None,
                "queued": [s.utterance.id for s in self._segments if not s.started]
                + [u.id for u in self._queue],
                "started_at": self.started_at,
                "frames_sent": self.frames_sent,
            }

    def events(self, since: int, wait: float) -> tuple[list[dict[str, object]], int]:
        """Events after `since`, waiting up to `wait` seconds for one; also the last seq."""
        deadline = time.monotonic() + wait
        with self._lock:
            while self._event_seq <= since and not self.closed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            count = max(0, min(self._event_seq - since, len(self._events)))
            return self._events[len(self._events) - count :], self._event_seq

    def _wait_event(
        self, kind: str, context_id: str, since: int, wait: float
    ) -> dict[str, object] | None:
        """The first `kind` event of a context after event `since`, waiting up to `wait` s;
        its fields without seq, time and type."""
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                newer = self._events[max(0, len(self._events) - (self._event_seq - since)) :]
                for event in newer:
                    if event["type"] == kind and event.get("context_id") == context_id:
                        return {k: v for k, v in event.items() if k not in _EVENT_FIELDS}
                left = deadline - time.monotonic()
                if left <= 0 or self.closed.is_set():
                    return None
                self._lock.wait(left)

    # Asterisk side ---------------------------------------------------------------------------
    def on_dtmf(self, digit: str) -> None:
        """A caller pressed a key."""
        with self._lock:
            self._emit("dtmf", digit=digit)

    def close(self, reason: str) -> None:
        """End the call: stop the threads, drop audio, tell pollers; safe to call twice."""
        session = None
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            self._drop()
            self._emit("hangup", reason=reason)
            session, self._session = self._session, None
        if session is not None:
            session.close()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # Internals (the _lock is held where noted) -----------------------------------------------
    def _drop(self) -> int:
        """Forget queued and buffered audio and stop the synthesis in flight (lock held)."""
        dropped = len(self._queue) + len(self._segments)
        self._queue.clear()
        self._segments.clear()
        if self._request is not None:
            self._request.abort()
            self._request = None
        for segment in list(self._contexts.values()):
            if self._stop_context(segment) and self._session is not None:
                self._session.send({"type": "context.cancel", "context_id": segment.context_id})
        self._lock.notify_all()
        return dropped

    def _open_session(self) -> SessionBridge:
        """The call's session, opened on first use (outside the lock: it waits for the server)."""
        if self._session is None:
            s = self.settings
            session = SessionBridge(s.url, session_settings(s.voice, s.language, s.params),
                                    self._on_session_audio, self._on_session_event,
                                    timeout=s.first_byte_timeout)
            with self._lock:
                if self._session is None:
                    self._session = session
                    session = None
            if session is not None:
                session.close()
        return self._session

    def _open_context(self, context_id: str) -> None:
        """Queue a context's audio after what is queued (lock held)."""
        s = self.settings
        segment = _Segment(Utterance(next(self._ids), "", s.voice, s.language),
                           context_id=context_id)
        self._contexts[context_id] = segment
        self._segments.append(segment)
        self._lock.notify_all()

    def _stop_context(self, segment: _Segment) -> bool:
        """Stop playing a context at once (lock held); False if it had already ended."""
        if segment.complete:
            return False
        segment.complete = True
        segment.audio.clear()
        if segment in self._segments:
            self._segments.remove(segment)
        return True

    def _on_session_audio(self, context_id: str, pcm: bytes) -> None:
        with self._lock:
            segment = self._contexts.get(context_id)
            if segment is not None and not segment.complete:
                segment.audio += pcm

    def _on_session_event(self, message: dict) -> None:
        """The server's replies: end or forget contexts, and tell pollers."""
        kind = str(message.pop("type", ""))
        with self._lock:
            context_id = message.get("context_id")
            if kind in ("speech.audio.done", "context.cancelled"):
                segment = self._contexts.pop(str(context_id), None)
                if segment is not None:
                    segment.complete = True
                    if kind == "context.cancelled":
                        _narrow_to_played(message, segment)
            elif kind == "session.closed":
                for segment in self._contexts.values():
                    segment.complete = True
                self._contexts.clear()
                self._session = None
            self._emit(kind, **message)

    def _emit(self, kind: str, **data: object) -> None:
        """Record an event for pollers (lock held)."""
        self._event_seq += 1
        self._events.append({"seq": self._event_seq, "type": kind, "time": time.time(), **data})
        del self._events[:-_MAX_EVENTS]
        self._lock.notify_all()

    def _send(self, data: bytes) -> None:
        """Write to Asterisk; a failure ends the call."""
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as exc:
            self.close(f"send failed: {exc}")

    def _next_frame(self) -> bytes:
        """The next 20 ms: speech once the head segment has its prebuffer, else silence."""
        with self._lock:
            if not self._segments:
                return SILENCE
            head = self._segments[0]
            if not head.started:
                if len(head.audio) < self.prebuffer and not head.complete:
                    return SILENCE
                head.started = True
                if head.audio:
                    self._emit("speaking", utterance=head.utterance.id)
            if len(head.audio) >= FRAME_BYTES:
                frame = bytes(head.audio[:FRAME_BYTES])
                del head.audio[:FRAME_BYTES]
                head.played += FRAME_BYTES
                return frame
            if not head.complete:
                return SILENCE  # underrun: the server is slower than real time
            frame = bytes(head.audio).ljust(FRAME_BYTES, b"\0")
            self._segments.popleft()
            self._emit("done", utterance=head.utterance.id)
            return frame

    def _pace(self) -> None:
        """Send one frame every 20 ms on a monotonic schedule until the call ends."""
        period = FRAME_MS / 1000
        due = time.monotonic()
        while not self.closed.is_set():
            self._send(encode(KIND_SLIN, self._next_frame()))
            self.frames_sent += 1
            due += period
            delay = due - time.monotonic()
            if delay < -_RESYNC_S:
                due = time.monotonic()
            elif delay > 0:
                self.closed.wait(delay)

    def _work(self) -> None:
        """Synthesise queued utterances in order, one request at a time."""
        while True:
            with self._lock:
                while not self.closed.is_set() and (not self._queue or self._request):
                    self._lock.wait()
                if self.closed.is_set():
                    return
                segment = _Segment(self._queue.popleft())
                self._segments.append(segment)
                u, s = segment.utterance, self.settings
                query = build_query(u.text, u.voice, u.language, s.params, "pcm", 8000)
                request = self._request = TtsRequest(
                    s.url,
                    query,
                    s.connect_timeout,
                    s.first_byte_timeout,
                    s.timeout,
                    accept_types=PCM_TYPES,
                    retry_wait=s.retry_wait,
                )
            self._synthesise(segment, request)

    def _synthesise(self, segment: _Segment, request: TtsRequest) -> None:
        """Stream one utterance's PCM into its segment while the segment is still wanted."""
        odd = b""
        error: TtsError | None = None
        try:
            for chunk in request.chunks():
                data = odd + chunk
                cut = len(data) // 2 * 2
                data, odd = data[:cut], data[cut:]
                with self._lock:
                    if request is not self._request:
                        return
                    segment.audio += data
        except TtsError as exc:
            error = exc
        with self._lock:
            if request is not self._request:
                return
            self._request = None
            segment.complete = True
            if error is not None:
                logger.warning(
                    "call %s: utterance %d failed: %s", self.id, segment.utterance.id, error
                )
                self._emit(
                    "error",
                    utterance=segment.utterance.id,
                    reason=error.reason,
                    message=error.detail,
                )
            self._lock.notify_all()


def _narrow_to_played(ack: dict, segment: _Segment) -> None:
    """Make a `context.cancelled` say what the caller heard, not what the server sent: the
    audio played (`played_ms`), the words that had ended by then and the input up to them."""
    played_ms = segment.played * FRAME_MS / FRAME_BYTES
    ack["played_ms"] = played_ms
    if isinstance(ack.get("words"), list):
        ack["words"] = [w for w in ack["words"] if w["end_ms"] <= played_ms]
        ack["heard_text"] = segment.utterance.text[: heard_end(ack["words"], played_ms)]

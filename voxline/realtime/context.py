"""One context of a session: its text buffer, its segments in flight, its audio timeline.

Two threads per context. The feeder cuts buffered text into segments (`buffering.next_cut`)
and renders each through the synthesis core as soon as the previous one's synthesis has ended,
so segment n+1 is synthesised while n's audio still plays at the client (gapless on any engine
faster than real time). Rendering n+1 earlier, while n is still being synthesised, only splits
one model between them: the scheduler then steps n+1 (due at its arrival) before n (due when
its sent audio runs out) and delays n's own audio; measured on tiny XTTS, n's second chunk came
4.5 s late. Every segment is encoded by the context's one encoder (continuous across its
segments) inside the core's render; the player reads each segment's tape in order and sends
deltas and word timings. Every message goes through the owner's lock, and a cancelled context
sends nothing more: that lock orders the `context.cancelled` ack after the last delta.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from voxline.realtime.buffering import next_cut
from voxline.realtime.synth import SessionError, SessionSettings, Synthesis, session_error
from voxline.synthesis.frontend.ssml import split_ssml_stream, ssml_safe_cut
from voxline.synthesis.render import Source
from voxline.tape import Part

logger = logging.getLogger(__name__)
LOOKAHEAD = 1  # segments being synthesised at once per context (see the module docstring)
STALL_S = 30.0  # the longest a player waits for a segment's next audio
RELEASE_WAIT_S = 5.0  # how long a cancelled context waits for its render to let go


class Owner(Protocol):
    """What a context needs of its session (a narrow view, so the two modules do not import
    each other)."""

    id: str
    lock: threading.RLock
    synth: Synthesis

    def send_locked(self, message: dict[str, Any]) -> None: ...

    def segment_done(self, context: Context, segment: Segment) -> None: ...

    def segment_error(self, context: Context, error: SessionError) -> None: ...

    def context_done(self, context: Context) -> None: ...

    def context_failed(self, context: Context) -> None: ...


@dataclass
class Segment:
    """A stretch of the context's audio, the text it speaks and where that text starts in the
    context's input."""

    text: str
    text_offset: int
    start_ms: float
    end_ms: float
    complete: bool = False
    words: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "audio_start_ms": round(self.start_ms, 1),
            "audio_end_ms": round(self.end_ms, 1),
        }


class Context:
    """Text in, audio out, for one context id of a session."""

    def __init__(self, owner: Owner, context_id: str, settings: SessionSettings) -> None:
        self.session = owner
        self.id = context_id
        self.settings = settings
        self.pipeline = owner.synth.pipeline(settings)
        self.cancelled = False
        self.ended = False
        self._cond = threading.Condition()
        self._input = ""  # every character the client sent to this context
        self._buffer = ""
        self._cut_chars = 0  # characters of _input already cut into segments
        self._reopened = 0  # SSML: the <speak> tag a kept buffer was reopened with
        self._flush = False
        self._started = False
        self._last_text = time.monotonic()
        self._pending: list[tuple[str, int]] = []  # (text, offset in _input)
        self._open = 0
        self._count = 0
        self._ready: queue.Queue = queue.Queue()
        self._fed = 0  # engine samples whose encoded audio was sent
        self.segments: list[Segment] = []

    def start(self) -> None:
        name = f"rt-{self.session.id[:8]}-{self.id[:16]}"
        threading.Thread(target=self._feed, name=name + "-feed", daemon=True).start()
        threading.Thread(target=self._play, name=name + "-play", daemon=True).start()

    # Called by the session's reader thread ----------------------------------------------------

    def append(self, text: str, max_chars: int) -> None:
        with self._cond:
            if len(self._buffer) + len(text) > max_chars:
                raise SessionError(
                    "text_too_long", f"more than {max_chars} characters buffered in this context"
                )
            self._buffer += text
            self._input += text
            self._last_text = time.monotonic()
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            self._flush = True
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def cancel(self, played_ms: float | None = None) -> dict[str, Any]:
        """Stop at once (owner's lock held): nothing of this context is sent after this.

        Heard words end by the audio sent, or by `played_ms` when the client says how much it
        played (a client that buffers ahead knows better than the server)."""
        self.cancelled = True
        with self._cond:
            self._cond.notify_all()
        self._ready.put(None)  # wakes a player waiting for its next segment
        summary = self.summary()
        if self.settings.word_timestamps:
            limit = summary["audio_ms"] if played_ms is None else min(played_ms,
                                                                      summary["audio_ms"])
            heard = [w for w in summary["words"] if w["end_ms"] <= limit]
            summary["words"] = heard
            summary["heard_text"] = self._input[: heard[-1]["text_end"]] if heard else ""
        return summary

    def summary(self) -> dict[str, Any]:
        """Audio sent so far, the segments it covered and their words (owner's lock held)."""
        summary = {
            "context_id": self.id,
            "audio_ms": round(self.audio_ms, 1),
            "segments": [{**s.describe(), "complete": s.complete} for s in self.segments],
        }
        if self.settings.word_timestamps:
            summary["words"] = [w for s in self.segments for w in s.words]
        return summary

    @property
    def audio_ms(self) -> float:
        return self._fed * 1000 / self.session.synth.engine_rate

    # Feeder thread ----------------------------------------------------------------------------

    def _feed(self) -> None:
        """Cut segments as the rules say and render them, `LOOKAHEAD` at most in flight."""
        try:
            while (cut := self._next_segment()) is not None:
                text, offset = cut
                item = self._open_segment(text)
                if item is None:  # nothing to say in it
                    self._segment_done()
                    continue
                if self.cancelled and isinstance(item, Source):
                    item.reader.close()  # cancelled while it was being opened
                    break
                self._ready.put((text, offset, item))
        except Exception:
            logger.exception("context %s: feeder failed", self.id)
        self._ready.put(None)

    def _next_segment(self) -> tuple[str, int] | None:
        with self._cond:
            while not self.cancelled:
                self._cut_due()
                if self._pending and self._open < LOOKAHEAD:
                    self._open += 1
                    return self._pending.pop(0)
                if self.ended and not self._pending and not self._buffer.strip():
                    return None
                self._cond.wait(self._wait_s())
        return None

    def _cut_due(self) -> None:
        if self.settings.text_type == "ssml":
            self._cut_ssml()
            return
        idle_ms = (time.monotonic() - self._last_text) * 1000
        while cut := next_cut(
            self._buffer,
            started=self._started,
            idle_ms=idle_ms,
            max_delay_ms=self.settings.max_buffer_delay_ms,
            flush=self._flush,
            end=self.ended,
            language=self.settings.language,
        ):
            raw = self._buffer[: cut.end]
            offset = self._cut_chars + len(raw) - len(raw.lstrip())
            self._buffer = self._buffer[cut.end :]
            self._cut_chars += cut.end
            self._pending.append((raw.strip(), offset))
            self._started = True
        self._flush = False

    def _cut_ssml(self) -> None:
        """SSML arrives in deltas: cut at a top-level break or sentence (`split_ssml_stream`;
        on flush, between any whole elements), never inside an element; at the end, whatever
        is left. A kept buffer
        reopens with the document's <speak> tag (`_reopened` characters that the client did
        not send at that place), so offsets into each segment's document map back to the
        stream by `text_offset`."""
        while (split := split_ssml_stream(self._buffer, self._flush)) is not None:
            document, kept = split
            cut = ssml_safe_cut(self._buffer, self._flush)  # where split_ssml_stream cut
            self._pending.append((document, self._cut_chars - self._reopened))
            self._cut_chars += cut - self._reopened
            self._reopened = len(kept) - (len(self._buffer) - cut)
            self._buffer = kept
            self._started = True
        if self.ended and self._buffer.strip():
            document = self._buffer
            if "</speak>" not in document:
                document += "</speak>"
            self._pending.append((document, self._cut_chars - self._reopened))
            self._cut_chars += len(self._buffer) - self._reopened
            self._buffer, self._reopened = "", 0
        self._flush = False

    def _wait_s(self) -> float | None:
        if not self._buffer.strip() or (self._pending and self._open >= LOOKAHEAD):
            return None
        idle = time.monotonic() - self._last_text
        return max(0.001, self.settings.max_buffer_delay_ms / 1000 - idle)

    def _open_segment(self, text: str) -> Source | SessionError | None:
        self._count += 1
        request_id = f"{self.session.id[:8]}.{self.id[:24]}.{self._count}"
        try:
            return self.session.synth.open_segment(
                request_id, text, self.settings, self.pipeline, lambda: self.cancelled
            )
        except SessionError as exc:
            return exc

    def _segment_done(self) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    # Player thread ----------------------------------------------------------------------------

    def _play(self) -> None:
        """Send each segment's audio in order, then the tail and `speech.audio.done`."""
        source: Source | None = None
        try:
            while (item := self._ready.get()) is not None:
                text, offset, source = item
                try:
                    self._play_segment(Segment(text, offset, self.audio_ms, self.audio_ms),
                                       source)
                finally:
                    self._segment_done()
            if not self.cancelled:
                self._send_audio(self.pipeline.finish())
                self.session.context_done(self)
        except Exception:
            logger.exception("context %s: player failed", self.id)
            self.session.context_failed(self)
        finally:
            self._drain()
            if isinstance(source, Source):
                # The encoder is the render's until its thread lets go of it.
                source.reader.tape.wait_closed(RELEASE_WAIT_S)
            self.pipeline.close()

    def _play_segment(self, segment: Segment, source: Source | SessionError) -> None:
        """Send one segment's parts; its one reader is closed here, whatever happens."""
        if isinstance(source, SessionError):
            self.session.segment_error(self, source)
            return
        try:
            while not self.cancelled and (
                    parts := source.reader.next_parts(STALL_S, lambda: self.cancelled)):
                if not self._send_parts(segment, parts):
                    return
        except Exception as exc:
            if self.cancelled:
                return  # the render we cancelled ended with an error
            error = session_error(exc)
            if error is None:
                raise
            logger.warning("context %s: segment failed: %s", self.id, exc)
            self.session.segment_error(self, error)
            return
        finally:
            source.reader.close()
        if not self.cancelled:
            segment.complete = True
            self.session.segment_done(self, segment)

    def _send_parts(self, segment: Segment, parts: list[Part]) -> bool:
        """Send one delta (and the words it completes); False once the context is cancelled."""
        rate = self.session.synth.engine_rate
        data = b"".join(p.data for p in parts)
        words = [w.describe(segment.start_ms, segment.text_offset) for p in parts
                 for w in p.words]
        with self.session.lock:
            if self.cancelled:
                return False
            if not (self.segments and self.segments[-1] is segment):
                self.segments.append(segment)
            if words and self.settings.word_timestamps:
                segment.words.extend(words)
                message = {"type": "speech.words", "context_id": self.id, "words": words}
                if any(w.estimated for p in parts for w in p.words):
                    message["estimated"] = True
                self.session.send_locked(message)
            self._send_audio(data)
            self._fed = round((segment.start_ms / 1000 + parts[-1].end_s) * rate)
            segment.end_ms = self.audio_ms
            return True

    def _send_audio(self, data: bytes) -> None:
        """One delta (owner's lock taken here too: an RLock)."""
        with self.session.lock:
            if data and not self.cancelled:
                self.session.send_locked({
                    "type": "speech.audio.delta",
                    "context_id": self.id,
                    "audio": base64.b64encode(data).decode("ascii"),
                })

    def _drain(self) -> None:
        """Release segments opened but never played (after a cancel)."""
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                return
            if item is not None and isinstance(item[2], Source):
                item[2].reader.close()

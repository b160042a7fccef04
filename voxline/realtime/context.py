"""One context of a session: its text buffer, its segments in flight, its audio timeline.

Two threads per context. The feeder cuts buffered text into segments (`buffering.next_cut`)
and submits each to the scheduler, at most `LOOKAHEAD` open at once, so segment n+1 is
synthesised while n streams (gapless). The player reads segments in order, encodes them with
one AudioPipeline (continuous across segments) and sends deltas. Every message goes through
the session's lock, and a cancelled context sends nothing more: that lock orders the
`context.cancelled` ack after the last delta.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxline.realtime.buffering import next_cut
from voxline.realtime.synth import SegmentAudio, SessionError, SessionSettings

if TYPE_CHECKING:
    from voxline.realtime.session import Session

logger = logging.getLogger(__name__)
LOOKAHEAD = 2  # segments submitted to the scheduler at once: the one streaming and the next


@dataclass
class Segment:
    """A stretch of the context's audio and the text it speaks."""

    text: str
    start_ms: float
    end_ms: float
    complete: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "audio_start_ms": round(self.start_ms, 1),
            "audio_end_ms": round(self.end_ms, 1),
        }


class Context:
    """Text in, audio out, for one context id of a session."""

    def __init__(self, session: Session, context_id: str, settings: SessionSettings) -> None:
        self.session = session
        self.id = context_id
        self.settings = settings
        self.pipeline = session.synth.pipeline(settings)
        self.cancelled = False
        self.ended = False
        self._cond = threading.Condition()
        self._buffer = ""
        self._flush = False
        self._started = False
        self._last_text = time.monotonic()
        self._pending: list[str] = []
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

    def cancel(self) -> dict[str, Any]:
        """Stop at once (session lock held): nothing of this context is sent after this."""
        self.cancelled = True
        with self._cond:
            self._cond.notify_all()
        self._ready.put(None)  # wakes a player waiting for its next segment
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """Audio sent so far and the segments it covered (session lock held)."""
        return {
            "context_id": self.id,
            "audio_ms": round(self.audio_ms, 1),
            "segments": [{**s.describe(), "complete": s.complete} for s in self.segments],
        }

    @property
    def audio_ms(self) -> float:
        return self._fed * 1000 / self.session.synth.engine_rate

    # Feeder thread ----------------------------------------------------------------------------

    def _feed(self) -> None:
        """Cut segments as the rules say and submit them, `LOOKAHEAD` at most in flight."""
        try:
            while (text := self._next_segment()) is not None:
                audio = self._open_segment(text)
                if isinstance(audio, SessionError) and audio.code == "busy":
                    self.session.segment_error(self, audio)  # at once: the session closes
                    break
                if self.cancelled and not isinstance(audio, SessionError):
                    audio.close()  # cancelled while it waited for admission
                    break
                self._ready.put((text, audio))
        except Exception:
            logger.exception("context %s: feeder failed", self.id)
        self._ready.put(None)

    def _next_segment(self) -> str | None:
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
            text = self._buffer[: cut.end].strip()
            self._buffer = self._buffer[cut.end :]
            self._pending.append(text)
            self._started = True
        self._flush = False

    def _wait_s(self) -> float | None:
        if not self._buffer.strip() or (self._pending and self._open >= LOOKAHEAD):
            return None
        idle = time.monotonic() - self._last_text
        return max(0.001, self.settings.max_buffer_delay_ms / 1000 - idle)

    def _open_segment(self, text: str) -> SegmentAudio | SessionError:
        self._count += 1
        request_id = f"{self.session.id[:8]}.{self.id[:24]}.{self._count}"
        try:
            return self.session.synth.open_segment(
                request_id, text, self.settings, lambda: self.cancelled
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
        try:
            while (item := self._ready.get()) is not None and not self.cancelled:
                text, audio = item
                try:
                    self._play_segment(text, audio)
                finally:
                    self._segment_done()
            if not self.cancelled:
                self._send_audio(self.pipeline.finish())
                self.session.context_done(self)
        except Exception:
            logger.exception("context %s: player failed", self.id)
            self.session.context_failed(self)
        finally:
            self.pipeline.close()
            self._drain()

    def _play_segment(self, text: str, audio: SegmentAudio | SessionError) -> None:
        if isinstance(audio, SessionError):
            self.session.segment_error(self, audio)
            return
        segment = Segment(text, self.audio_ms, self.audio_ms)
        try:
            for chunk in audio.chunks:
                data = self.pipeline.feed(chunk)
                if not self._send_audio(data, len(chunk), segment):
                    return
        except Exception as exc:
            logger.warning("context %s: segment failed: %s", self.id, exc)
            self.session.segment_error(
                self, SessionError("synthesis_failed", "synthesis of a segment failed")
            )
            return
        finally:
            audio.close()
        segment.complete = True
        self.session.segment_done(self, segment)

    def _send_audio(self, data: bytes, samples: int = 0, segment: Segment | None = None) -> bool:
        """Send one delta and account for it; False once the context is cancelled."""
        with self.session.lock:
            if self.cancelled:
                return False
            if segment is not None and not (self.segments and self.segments[-1] is segment):
                self.segments.append(segment)
            if data:
                self.session.send_locked(
                    {
                        "type": "speech.audio.delta",
                        "context_id": self.id,
                        "audio": base64.b64encode(data).decode("ascii"),
                    }
                )
            self._fed += samples
            if segment is not None:
                segment.end_ms = self.audio_ms
            return True

    def _drain(self) -> None:
        """Release segments opened but never played (after a cancel)."""
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                return
            if item is not None and not isinstance(item[1], SessionError):
                item[1].close()

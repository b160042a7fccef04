"""A call's realtime session on the Voxline server: text deltas in, 8 kHz PCM out.

The buffering rules (when to cut text into segments), segment timing and cancellation live in
the server's session (`GET /v1/audio/speech/stream`); this bridge only forwards a voicebot's
session messages and hands the audio and events back to the call. Needs the `websockets`
package (pure Python); nothing here imports torch or the server.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.parse
from typing import Callable

logger = logging.getLogger(__name__)

# The session messages a voicebot may send through the control API, unchanged.
CLIENT_TYPES = ("input_text.append", "input_text.flush", "input_text.end", "context.cancel")
RATE = 8000  # AudioSocket's slin: 8 kHz s16le


class SessionError(Exception):
    """The session could not be opened or used."""


class SessionBridge:
    """One websocket session; `on_audio(context_id, pcm)` and `on_event(message)` get replies."""

    def __init__(
        self,
        url: str,
        settings: dict[str, object],
        on_audio: Callable[[str, bytes], None],
        on_event: Callable[[dict], None],
        timeout: float = 5.0,
    ) -> None:
        from websockets.sync.client import connect

        parts = urllib.parse.urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        ws_url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/v1/audio/speech/stream"
        self._on_audio = on_audio
        self._on_event = on_event
        self._lock = threading.Lock()
        try:
            # Entered as a context manager: websockets >= 17.1 warns about direct use otherwise.
            self._ws = connect(ws_url, open_timeout=timeout, close_timeout=2).__enter__()
            self._expect("session.created", timeout)
            self.send(
                {
                    "type": "session.update",
                    "session": {**settings, "format": "pcm", "sample_rate": RATE},
                }
            )
            self._expect("session.updated", timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SessionError(f"cannot open a session at {ws_url}: {exc}") from exc
        threading.Thread(target=self._read, name="as-session", daemon=True).start()

    def send(self, message: dict) -> None:
        """Forward one session message; SessionError once the session is gone."""
        try:
            with self._lock:
                self._ws.send(json.dumps(message))
        except Exception as exc:  # websockets' ConnectionClosed and socket errors
            raise SessionError(f"the session is closed: {exc}") from exc

    def close(self) -> None:
        self._ws.close()

    def _expect(self, kind: str, timeout: float) -> dict:
        message = json.loads(self._ws.recv(timeout))
        if message.get("type") != kind:
            raise ValueError(f"expected {kind}, got {message}")
        return message

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self._ws:
                message = json.loads(raw)
                if message.get("type") == "speech.audio.delta":
                    self._on_audio(message["context_id"], base64.b64decode(message["audio"]))
                else:
                    self._on_event(message)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("session reader failed")
        self._on_event(
            {
                "type": "session.closed",
                "code": self._ws.close_code,
                "reason": self._ws.close_reason or "connection lost",
            }
        )


def session_settings(voice: str, language: str, params: str) -> dict[str, object]:
    """Session settings from the call's voice, language and `name=value&...` parameters."""
    settings: dict[str, object] = {"language": language}
    if voice:
        settings["voice"] = voice
    for name, value in urllib.parse.parse_qsl(params):
        settings[name] = _number(value)
    return settings


def _number(value: str) -> object:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value

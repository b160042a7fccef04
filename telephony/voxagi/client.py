"""HTTP client for the Voxline server's /tts_stream route, with separate time limits."""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import http.client

ULAW_TYPES = ("audio/pcmu", "audio/basic", "audio/x-mulaw", "audio/ulaw", "audio/mulaw")
PCM_TYPES = ("audio/pcm", "audio/x-raw", "application/octet-stream")
_CHUNK = 8192


class TtsError(Exception):
    """The server could not deliver usable audio; `reason` is a short code for the dialplan."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Cancelled(TtsError):
    """The caller no longer wants this audio."""

    def __init__(self) -> None:
        super().__init__("cancelled", "request cancelled")


def build_query(
    text: str, voice: str, language: str, params: str, fmt: str, sample_rate: int
) -> str:
    """The /tts_stream query string; `params` is extra `name=value&...` passed through."""
    fields = [("text", text), ("language", language), ("format", fmt)]
    fields.append(("sample_rate", str(sample_rate)))
    if voice:
        fields.append(("speaker", voice))
    fields += urllib.parse.parse_qsl(params, keep_blank_values=False)
    return urllib.parse.urlencode(fields)


class TtsRequest:
    """One streaming request; `stream_to` copies the body to a file as it arrives."""

    def __init__(
        self,
        url: str,
        query: str,
        connect_timeout: float,
        first_byte_timeout: float,
        timeout: float,
        accept_types: tuple[str, ...] = ULAW_TYPES,
        cancel: threading.Event | None = None,
    ) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.query = query
        self.connect_timeout = connect_timeout
        self.first_byte_timeout = first_byte_timeout
        self.timeout = timeout
        self.accept_types = accept_types
        self.cancel = cancel or threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def abort(self) -> None:
        """Cancel from another thread, unblocking a read in progress."""
        self.cancel.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self) -> http.client.HTTPConnection:
        """Open a connection to the server within the connect timeout."""
        # Imported on first use: a cached prompt never needs it and the AGI script starts
        # per call (http.client and ssl cost ~30 ms of start-up on Python 3.14).
        import http.client

        scheme = self.url.scheme
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(self.url.hostname or "127.0.0.1", self.url.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TtsError("unreachable", str(exc)) from exc
        return conn

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in chunks as it arrives; raises TtsError on any failure."""
        import http.client

        deadline = time.monotonic() + self.timeout
        conn = self._conn = self._connection()
        try:
            path = (self.url.path.rstrip("/") or "") + "/tts_stream?" + self.query
            assert conn.sock is not None
            conn.sock.settimeout(min(self.first_byte_timeout, self.timeout))
            try:
                conn.request("GET", path, headers={"Accept": self.accept_types[0]})
                response = conn.getresponse()
            except socket.timeout as exc:
                raise TtsError("timeout", "no response before the first-byte timeout") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise TtsError("unreachable", str(exc)) from exc
            if response.status != 200:
                raise TtsError(f"http_{response.status}", _error_message(response))
            ctype = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if ctype not in self.accept_types:
                raise TtsError("bad_audio", f"unexpected content type {ctype!r}")
            total = 0
            while True:
                if self.cancel.is_set():
                    raise Cancelled()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TtsError("timeout", "synthesis took longer than the timeout")
                conn.sock.settimeout(left)
                try:
                    data = response.read1(_CHUNK)
                except socket.timeout as exc:
                    raise TtsError("timeout", "the audio stream stalled") from exc
                except (OSError, http.client.HTTPException) as exc:
                    if self.cancel.is_set():
                        raise Cancelled() from exc
                    raise TtsError("broken_stream", str(exc)) from exc
                if not data:
                    break
                total += len(data)
                yield data
            if total == 0:
                raise TtsError("bad_audio", "empty audio")
        finally:
            self._conn = None
            conn.close()


def _error_message(response: http.client.HTTPResponse) -> str:
    """The `message` of a JSON error body, else the start of the body."""
    import http.client
    import json

    try:
        body = response.read(4096)
    except (OSError, http.client.HTTPException):
        return response.reason
    try:
        return str(json.loads(body).get("message", ""))[:200] or response.reason
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace") or response.reason

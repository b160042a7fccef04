"""HTTP client for the Voxline server's /tts_stream and /tts routes, with separate time limits."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .log import get_logger

if TYPE_CHECKING:
    import http.client

# Failures before any audio byte after which the next server is tried: refused or lost
# connection, no answer within the first-byte timeout, a full queue. Never after audio started.
FAILOVER_REASONS = ("unreachable", "timeout", "http_503")
ULAW_TYPES = ("audio/pcmu", "audio/basic", "audio/x-mulaw", "audio/ulaw", "audio/mulaw")
PCM_TYPES = ("audio/pcm", "audio/x-raw", "application/octet-stream")
JSON_TYPES = ("application/json",)
_CHUNK = 8192

logger = get_logger(__name__)


class TtsError(Exception):
    """The server could not deliver usable audio; `reason` is a short code for the dialplan.
    `retry_after`: the seconds a 503's Retry-After asked the client to wait, if it said."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


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


def build_timed_body(
    text: str, voice: str, language: str, params: str, fmt: str, sample_rate: int
) -> bytes:
    """The POST /tts JSON body that asks for the audio with its word timings."""
    fields: dict[str, object] = {"text": text, "language": language, "format": fmt}
    fields.update({"sample_rate": sample_rate, "timestamps": True})
    if voice:
        fields["speaker"] = voice
    for name, value in urllib.parse.parse_qsl(params, keep_blank_values=False):
        fields[name] = _json_value(value)
    return json.dumps(fields).encode("utf-8")


def _json_value(text: str) -> object:
    """A `name=value` parameter as JSON wants it: true/false, a number, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_timed(chunks: Iterable[bytes]) -> tuple[bytes, list[dict[str, Any]]]:
    """The audio and words of a POST /tts answer with `timestamps: true`; TtsError if the
    document is not one."""
    try:
        doc = json.loads(b"".join(chunks))
        audio = base64.b64decode(doc["audio"], validate=True)
        words = [_word(w) for w in doc["words"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise TtsError("bad_audio", f"not a timed audio document: {exc}") from exc
    if not audio:
        raise TtsError("bad_audio", "empty audio")
    return audio, words


def _word(word: dict[str, Any]) -> dict[str, Any]:
    """One word with the fields the telephone uses, checked for type."""
    return {
        "word": str(word["word"]),
        "start_ms": float(word["start_ms"]),
        "end_ms": float(word["end_ms"]),
        "text_start": int(word["text_start"]),
        "text_end": int(word["text_end"]),
    }


class TtsRequest:
    """One request to the first server of `url` (comma-separated) that answers: a GET of
    `/tts_stream?query`, or a POST of the JSON `body` to `route` when a body is given.

    A server that refuses, times out before the first byte or answers 503 is skipped for the
    next; once audio has started, a failure is final (the caller has heard part of it). When
    every server failed before any audio and one answered 503 with a Retry-After of at most
    `retry_wait` seconds, that server is asked once more after the wait (the soonest, if
    several). All tries and the wait share one `timeout`.
    """

    def __init__(
        self,
        url: str,
        query: str,
        connect_timeout: float,
        first_byte_timeout: float,
        timeout: float,
        accept_types: tuple[str, ...] = ULAW_TYPES,
        cancel: threading.Event | None = None,
        body: bytes | None = None,
        route: str = "/tts_stream",
        retry_wait: float = 0.0,
    ) -> None:
        self.urls = [urllib.parse.urlsplit(u.strip()) for u in url.split(",") if u.strip()]
        self.query = query
        self.connect_timeout = connect_timeout
        self.first_byte_timeout = first_byte_timeout
        self.timeout = timeout
        self.accept_types = accept_types
        self.cancel = cancel or threading.Event()
        self.body = body
        self.route = route
        self.retry_wait = retry_wait
        self._sock: socket.socket | None = None  # the connection's, kept past http.client's

    def abort(self) -> None:
        """Cancel from another thread, unblocking a read in progress."""
        self.cancel.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self, url: urllib.parse.SplitResult, left: float) -> http.client.HTTPConnection:
        """Open a connection to the server within the connect timeout."""
        # Imported on first use: a cached prompt never needs it and the AGI script starts
        # per call (http.client and ssl cost ~30 ms of start-up on Python 3.14).
        import http.client

        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        timeout = max(0.001, min(self.connect_timeout, left))
        conn = cls(url.hostname or "127.0.0.1", url.port, timeout=timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TtsError("unreachable", str(exc)) from exc
        return conn

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in chunks as it arrives; raises TtsError on any failure."""
        deadline = time.monotonic() + self.timeout
        servers, started, waited = self.urls, False, False
        while True:
            busy: list[tuple[float, urllib.parse.SplitResult]] = []
            try:
                for data in self._first_that_answers(servers, deadline, busy):
                    started = True
                    yield data
                return
            except TtsError as exc:
                wait = None if waited else self._retry(started, busy, deadline)
                if wait is None:
                    raise
                delay, url = wait
                logger.warning("%s is busy; asking again in %.1f s (its Retry-After)",
                               url.netloc, delay)
                if self.cancel.wait(delay):
                    raise Cancelled() from exc
                servers, started, waited = [url], False, True  # once per request

    def _retry(self, started: bool, busy: list[tuple[float, urllib.parse.SplitResult]],
               deadline: float) -> tuple[float, urllib.parse.SplitResult] | None:
        """The wait and the server to ask again after a failure, or None to give up: only
        before any audio, not once cancelled, within `retry_wait`, and with time left after
        the wait."""
        if started or not busy or self.cancel.is_set():
            return None
        delay, url = min(busy, key=lambda b: b[0])
        if delay > self.retry_wait or time.monotonic() + delay >= deadline:
            return None
        return delay, url

    def _first_that_answers(self, servers: list[urllib.parse.SplitResult], deadline: float,
                            busy: list[tuple[float, urllib.parse.SplitResult]]
                            ) -> Iterator[bytes]:
        """The body from the first of `servers` that answers; each 503 with a Retry-After
        is noted in `busy` as (seconds, server)."""
        for index, url in enumerate(servers):
            started = False
            try:
                for data in self._chunks_from(url, deadline):
                    started = True
                    yield data
                return
            except TtsError as exc:
                if exc.retry_after is not None:
                    busy.append((exc.retry_after, url))
                last = index + 1 == len(servers)
                if started or last or exc.reason not in FAILOVER_REASONS or self.cancel.is_set():
                    raise
                logger.warning(
                    "%s failed before any audio (%s); trying the next server", url.netloc, exc
                )

    def _chunks_from(self, url: urllib.parse.SplitResult, deadline: float) -> Iterator[bytes]:
        """The body from one server, chunk by chunk; raises TtsError on any failure."""
        import http.client

        conn = self._connection(url, deadline - time.monotonic())
        response = None
        try:
            path = url.path.rstrip("/") + self.route + (f"?{self.query}" if self.query else "")
            # http.client drops conn.sock at a reply that closes the connection (a draining
            # server, an HTTP/1.0 proxy); the body is still read from this socket.
            sock = self._sock = conn.sock
            assert sock is not None
            sock.settimeout(
                max(0.001, min(self.first_byte_timeout, deadline - time.monotonic()))
            )
            try:
                headers = {"Accept": self.accept_types[0]}
                if self.body is None:
                    conn.request("GET", path, headers=headers)
                else:
                    headers["Content-Type"] = "application/json"
                    conn.request("POST", path, body=self.body, headers=headers)
                response = conn.getresponse()
            except socket.timeout as exc:
                raise TtsError("timeout", "no response before the first-byte timeout") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise TtsError("unreachable", str(exc)) from exc
            if response.status != 200:
                wait = _retry_after(response) if response.status == 503 else None
                raise TtsError(f"http_{response.status}", _error_message(response), wait)
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
                sock.settimeout(left)
                try:
                    data = response.read1(_CHUNK)
                except socket.timeout as exc:
                    raise TtsError("timeout", "the audio stream stalled") from exc
                except (OSError, http.client.HTTPException) as exc:
                    if self.cancel.is_set():
                        raise Cancelled() from exc
                    raise TtsError("broken_stream", str(exc)) from exc
                if not data:
                    if self.cancel.is_set():  # abort's shutdown reads as the end of a body
                        raise Cancelled()      # that has neither length nor chunks
                    if response.length:  # read1 ends quietly when a sized body is cut short
                        raise TtsError("broken_stream", "the server closed mid-audio")
                    break
                total += len(data)
                yield data
            if total == 0:
                raise TtsError("bad_audio", "empty audio")
        finally:
            self._sock = None
            if response is not None:
                response.close()  # after a closing reply, http.client handed it the socket
            conn.close()


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    """A Retry-After header in seconds from now (delay-seconds or an HTTP-date), if valid.
    (`voxline_client.failover.parse_retry_after` reads it the same way; voxagi/ installs on
    an Asterisk host alone, so it has its own.)"""
    value = (response.getheader("Retry-After") or "").strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait


def _error_message(response: http.client.HTTPResponse) -> str:
    """The `message` of a JSON error body, else the start of the body."""
    import http.client

    try:
        body = response.read(4096)
    except (OSError, http.client.HTTPException):
        return response.reason
    try:
        return str(json.loads(body).get("message", ""))[:200] or response.reason
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace") or response.reason

"""HTTP client for Voxline: streamed and whole synthesis, failover, retries within a deadline.

A call may name several servers. Until the first byte of the response body has arrived, a
connection failure, a 502/503/504 or a `timeout` without an answer moves on to the next server;
a server that failed is tried again after its `Retry-After` (else a doubling backoff from
`backoff`), for as long as the call's `deadline` allows. Client errors (4xx) are never retried.
Once audio has started nothing is retried: a response that breaks off raises
`VoxlineStreamError`, never a silently short result. `timeout` bounds connecting, the wait for
the first byte, and every later read.
"""

from __future__ import annotations

import http.client
import json
import logging
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from voxline_client.failover import Rotation, parse_retry_after, split_urls

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8020"
RETRY_STATUSES = frozenset({502, 503, 504})
CHUNK_BYTES = 8192
# Output formats by file suffix, for `save` and the CLI.
FORMAT_BY_SUFFIX = {
    ".wav": "wav",
    ".mp3": "mp3",
    ".ogg": "opus",
    ".opus": "opus",
    ".flac": "flac",
    ".aac": "aac",
    ".ulaw": "ulaw",
    ".alaw": "alaw",
    ".pcm": "pcm",
    ".raw": "pcm",
    ".l16": "l16",
}
# What a broken connection raises: socket errors and timeouts, and http.client's own (a
# chunked body that ends without its last chunk is IncompleteRead).
BROKEN = (OSError, http.client.HTTPException)


class VoxlineError(Exception):
    """Anything that kept a request from producing audio."""


class VoxlineConnectionError(VoxlineError):
    """No server could be reached (or none answered in time) before the deadline."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class VoxlineHTTPError(VoxlineError):
    """The server answered with an error status; `code` and `message` come from its JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id
        self.attempts = attempts


class VoxlineStreamError(VoxlineError):
    """The response broke off after its first byte (or was empty): the audio is incomplete."""

    def __init__(self, message: str, received: int, request_id: str | None = None) -> None:
        super().__init__(message)
        self.received = received
        self.request_id = request_id


@dataclass
class _Opened:
    """A response whose first body bytes have arrived, with the connection that carries it."""

    url: str
    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    first: bytes

    def close(self) -> None:
        self.response.close()
        self.connection.close()


class _Retryable(Exception):
    """An attempt that failed before its first byte: another server (or a later try) may do."""

    def __init__(self, error: VoxlineError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class AudioStream:
    """An audio response being received: iterate for byte chunks as they arrive.

    Use it as a context manager (or call `close`) so an abandoned stream hangs up, which tells
    the server to stop synthesising. Iterating raises `VoxlineStreamError` if the stream breaks
    off before its normal end.
    """

    def __init__(self, opened: _Opened, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._opened = opened
        self._chunk_bytes = chunk_bytes
        self.url: str = opened.url  # the server that answered
        headers = opened.response.headers
        self.content_type: str = headers.get("Content-Type", "")
        rate = headers.get("X-Sample-Rate")
        self.sample_rate: int | None = int(rate) if rate and rate.isdigit() else None
        self.request_id: str | None = headers.get("X-Request-Id")
        self.voice: str | None = headers.get("X-Voxline-Voice")
        self.cache: str | None = headers.get("X-Voxline-Cache")
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        response = self._opened.response
        try:
            data, self._opened.first = self._opened.first, b""
            while data:
                self.received += len(data)
                yield data
                data = response.read1(self._chunk_bytes)
        except BROKEN as exc:
            raise VoxlineStreamError(
                f"the audio stream from {self.url} broke off after {self.received} bytes: {exc!r}",
                self.received,
                self.request_id,
            ) from exc
        finally:
            self.close()

    def read_all(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._opened.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VoxlineClient:
    """Talks to one Voxline server, or fails over between several (`base_url` may be a list or a
    comma-separated string; earlier URLs are preferred)."""

    def __init__(
        self,
        base_url: str | Sequence[str] = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        deadline: float = 60.0,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_urls = split_urls(base_url)
        self.api_key = api_key
        self.timeout = timeout  # connect, first byte, and every later read
        self.deadline = deadline  # the whole wait for a first byte: all servers, all retries
        self.backoff = backoff
        self.max_wait = max_wait  # longest single wait between attempts on one server
        self._sleep = sleep
        self._clock = clock

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    def stream(
        self, text: str, *, voice: str | None = None, format: str = "pcm", **fields: Any
    ) -> AudioStream:
        """Start a streamed synthesis (POST /tts_stream); audio arrives while it is generated.

        `fields` are further request fields: language, sample_rate, speed, temperature, seed,
        cache (False skips the server's phrase cache), ...
        """
        body = _request_body(text, voice, format, fields)
        return AudioStream(self._open("POST", "/tts_stream", body))

    def synthesize(
        self, text: str, *, voice: str | None = None, format: str = "wav", **fields: Any
    ) -> bytes:
        """The whole utterance in one response (POST /tts): a WAV with exact sizes by default."""
        body = _request_body(text, voice, format, fields)
        return _read_whole(self._open("POST", "/tts", body))

    def save(
        self, text: str, path: str | Path, *, format: str | None = None, **fields: Any
    ) -> Path:
        """Stream an utterance into a file; the format follows the suffix unless given.

        A stream that breaks off leaves no file behind (the error is raised)."""
        path = Path(path)
        format = format or FORMAT_BY_SUFFIX.get(path.suffix.lower(), "wav")
        with self.stream(text, format=format, **fields) as audio:
            write_file(audio, path, format)
        return path

    def voices(self) -> dict[str, Any]:
        """The server's voices (GET /speakers): names, the default, and voices that failed."""
        return self._json("GET", "/speakers")

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def _json(self, method: str, path: str) -> dict[str, Any]:
        return json.loads(_read_whole(self._open(method, path, None)))

    def _open(self, method: str, path: str, body: dict[str, Any] | None) -> _Opened:
        """Send a request until a server's first body bytes arrive; raise VoxlineError."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "*/*"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        rotation = Rotation(
            len(self.base_urls),
            self.deadline,
            backoff=self.backoff,
            max_wait=self.max_wait,
            clock=self._clock,
        )
        attempts, last = 0, None
        while (step := rotation.next()) is not None:
            index, wait = step
            if wait:
                self._sleep(wait)
            attempts += 1
            url = self.base_urls[index]
            timeout = max(0.001, min(self.timeout, rotation.remaining()))
            try:
                return self._attempt(url, method, path, data, headers, timeout)
            except _Retryable as failure:
                last = failure.error
                logger.info("%s %s%s: %s; next try in the rotation", method, url, path, last)
                rotation.failed(index, failure.retry_after)
            except VoxlineHTTPError as exc:
                exc.attempts = attempts
                raise
        raise _give_up(last, attempts, self.deadline)

    def _attempt(
        self,
        url: str,
        method: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> _Opened:
        """One request to one server, up to its first body bytes."""
        parts = urlsplit(url)
        https = parts.scheme == "https"
        kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        try:
            connection.request(method, parts.path + path, body=data, headers=headers)
            sock = connection.sock  # kept: getresponse drops it for `Connection: close` replies
            response = connection.getresponse()
            if response.status >= 400:
                error = _http_error(response)
                if response.status in RETRY_STATUSES:
                    raise _Retryable(error, error.retry_after)
                raise error
            first = response.read1(CHUNK_BYTES)
        except BROKEN as exc:
            connection.close()
            raise _Retryable(VoxlineConnectionError(f"{url}: {exc!r}", 1)) from exc
        except BaseException:
            connection.close()
            raise
        opened = _Opened(url, connection, response, first)
        if not first:
            opened.close()
            raise VoxlineStreamError(
                f"{url} answered {response.status} with an empty body",
                0,
                response.headers.get("X-Request-Id"),
            )
        if sock is not None:
            sock.settimeout(self.timeout)  # the first byte may have had less (the deadline)
        return opened


def _give_up(last: VoxlineError | None, attempts: int, deadline: float) -> VoxlineError:
    """The error that ends a call whose deadline passed: the last failure, with the count."""
    if isinstance(last, VoxlineHTTPError):
        last.attempts = attempts
        return last
    reason = f"; last: {last}" if last is not None else ""
    return VoxlineConnectionError(
        f"no server answered within the {deadline:g} s deadline ({attempts} attempts){reason}",
        attempts,
    )


def _read_whole(opened: _Opened) -> bytes:
    """The rest of a response after its first bytes; a body that breaks off raises."""
    try:
        return opened.first + opened.response.read()
    except BROKEN as exc:
        raise VoxlineStreamError(
            f"the response from {opened.url} broke off: {exc!r}", len(opened.first)
        ) from exc
    finally:
        opened.close()


def _request_body(
    text: str, voice: str | None, format: str, fields: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "format": format}
    if voice:
        body["speaker"] = voice
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def _http_error(response: http.client.HTTPResponse) -> VoxlineHTTPError:
    """The server's JSON error (Voxline's or OpenAI's shape) as a VoxlineHTTPError."""
    try:
        payload = json.loads(response.read() or b"{}")
    except (ValueError, *BROKEN):
        payload = {}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):  # OpenAI's shape
        code, message = str(error.get("code")), str(error.get("message"))
    else:
        code = str(error or "http_error")
        message = (
            str(payload.get("message") or response.reason)
            if isinstance(payload, dict)
            else str(response.reason)
        )
    return VoxlineHTTPError(
        response.status,
        code,
        message,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        request_id=response.headers.get("X-Request-Id"),
    )


def write_file(audio: AudioStream, path: Path, format: str) -> int:
    """Stream into a file; if the stream breaks off, remove the file and raise."""
    try:
        with path.open("w+b") as out:
            return write_stream(audio, out, format)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_stream(audio: AudioStream, out: IO[bytes], format: str) -> int:
    """Copy a stream to `out` as it arrives; fix a WAV header's sizes when `out` can seek."""
    total = 0
    for chunk in audio:
        out.write(chunk)
        out.flush()
        total += len(chunk)
    if format == "wav" and total >= 44 and out.seekable():
        out.seek(0)
        header = out.read(44) if out.readable() else b""
        if header[:4] == b"RIFF" and header[36:40] == b"data":
            out.seek(4)
            out.write(struct.pack("<I", total - 8))
            out.seek(40)
            out.write(struct.pack("<I", total - 44))
        out.seek(0, 2)
    return total

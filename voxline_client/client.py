"""HTTP client for Voxline: streamed and whole synthesis, retries with backoff, timeouts.

A request is retried (before any audio has arrived) when the server cannot be reached or answers
502/503/504; a `Retry-After` header sets the wait, else the wait doubles from `backoff`. Client
errors (4xx) are never retried. `timeout` bounds connecting and every read, so a stalled server
cannot hang the caller.
"""

from __future__ import annotations

import json
import logging
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.client import HTTPResponse
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8020"
RETRY_STATUSES = frozenset({502, 503, 504})
CHUNK_BYTES = 8192
# Output formats by file suffix, for `save` and the CLI.
FORMAT_BY_SUFFIX = {".wav": "wav", ".mp3": "mp3", ".ogg": "opus", ".opus": "opus",
                    ".flac": "flac", ".aac": "aac", ".ulaw": "ulaw", ".alaw": "alaw",
                    ".pcm": "pcm", ".raw": "pcm", ".l16": "l16"}


class VoxlineError(Exception):
    """Anything that kept a request from producing audio."""


class VoxlineConnectionError(VoxlineError):
    """The server could not be reached (after every retry)."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class VoxlineHTTPError(VoxlineError):
    """The server answered with an error status; `code` and `message` come from its JSON."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None,
                 request_id: str | None = None, attempts: int = 1) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id
        self.attempts = attempts


class AudioStream:
    """An audio response being received: iterate for byte chunks as they arrive.

    Use it as a context manager (or call `close`) so an abandoned stream hangs up, which tells
    the server to stop synthesising.
    """

    def __init__(self, response: HTTPResponse, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._response = response
        self._chunk_bytes = chunk_bytes
        headers = response.headers
        self.content_type: str = headers.get("Content-Type", "")
        rate = headers.get("X-Sample-Rate")
        self.sample_rate: int | None = int(rate) if rate and rate.isdigit() else None
        self.request_id: str | None = headers.get("X-Request-Id")
        self.voice: str | None = headers.get("X-Voxline-Voice")
        self.cache: str | None = headers.get("X-Voxline-Cache")

    def __iter__(self) -> Iterator[bytes]:
        try:
            while data := self._response.read1(self._chunk_bytes):
                yield data
        except OSError as exc:  # includes timeouts
            raise VoxlineConnectionError(f"the audio stream broke off: {exc}", 1) from exc
        finally:
            self.close()

    def read_all(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VoxlineClient:
    """Talks to one Voxline server."""

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 max_wait: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait  # longest single wait between attempts
        self._sleep = sleep

    def stream(self, text: str, *, voice: str | None = None, format: str = "pcm",
               **fields: Any) -> AudioStream:
        """Start a streamed synthesis (POST /tts_stream); audio arrives while it is generated.

        `fields` are further request fields: language, sample_rate, speed, temperature, seed,
        cache (False skips the server's phrase cache), ...
        """
        body = _request_body(text, voice, format, fields)
        return AudioStream(self._open("POST", "/tts_stream", body))

    def synthesize(self, text: str, *, voice: str | None = None, format: str = "wav",
                   **fields: Any) -> bytes:
        """The whole utterance in one response (POST /tts): a WAV with exact sizes by default."""
        body = _request_body(text, voice, format, fields)
        response = self._open("POST", "/tts", body)
        try:
            return response.read()
        finally:
            response.close()

    def save(self, text: str, path: str | Path, *, format: str | None = None,
             **fields: Any) -> Path:
        """Stream an utterance into a file; the format follows the suffix unless given."""
        path = Path(path)
        format = format or FORMAT_BY_SUFFIX.get(path.suffix.lower(), "wav")
        with self.stream(text, format=format, **fields) as audio, path.open("w+b") as out:
            write_stream(audio, out, format)
        return path

    def voices(self) -> dict[str, Any]:
        """The server's voices (GET /speakers): names, the default, and voices that failed."""
        return self._json("GET", "/speakers")

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def _json(self, method: str, path: str) -> dict[str, Any]:
        response = self._open(method, path, None)
        try:
            return json.loads(response.read())
        finally:
            response.close()

    def _open(self, method: str, path: str, body: dict[str, Any] | None) -> HTTPResponse:
        """Send a request, retrying connection failures and 502/503/504; raise VoxlineError."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "*/*"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempts = 0
        while True:
            attempts += 1
            request = urllib.request.Request(self.base_url + path, data=data, headers=headers,
                                             method=method)
            try:
                return urllib.request.urlopen(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                error = _http_error(exc, attempts)
                if exc.code not in RETRY_STATUSES or attempts > self.retries:
                    raise error from None
                wait = error.retry_after if error.retry_after is not None else self._backoff(
                    attempts)
                logger.info("%s %s: %d %s; retrying in %.1f s", method, path, exc.code,
                            error.code, wait)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if attempts > self.retries:
                    raise VoxlineConnectionError(
                        f"cannot reach {self.base_url}: {reason}", attempts) from exc
                wait = self._backoff(attempts)
                logger.info("%s %s: %s; retrying in %.1f s", method, path, reason, wait)
            self._sleep(min(wait, self.max_wait))

    def _backoff(self, attempts: int) -> float:
        return self.backoff * 2 ** (attempts - 1)


def _request_body(text: str, voice: str | None, format: str,
                  fields: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "format": format}
    if voice:
        body["speaker"] = voice
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def _http_error(exc: urllib.error.HTTPError, attempts: int) -> VoxlineHTTPError:
    """The server's JSON error (Voxline's or OpenAI's shape) as a VoxlineHTTPError."""
    try:
        payload = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        payload = {}
    finally:
        exc.close()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):  # OpenAI's shape
        code, message = str(error.get("code")), str(error.get("message"))
    else:
        code = str(error or "http_error")
        message = str(payload.get("message") or exc.reason) if isinstance(payload, dict) \
            else str(exc.reason)
    retry_after = exc.headers.get("Retry-After") if exc.headers else None
    return VoxlineHTTPError(
        exc.code, code, message,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        request_id=exc.headers.get("X-Request-Id") if exc.headers else None,
        attempts=attempts,
    )


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

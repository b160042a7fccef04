"""Body: the HTTP response for a planned request, with failure semantics every client sees.

- Nothing is sent before the first audio: a failure until then (queue full, synthesis error,
  no audio at all) raises, and the route answers with a proper status and JSON body.
- After the first byte, a failure aborts the response: the generator raises, and gunicorn
  closes the connection without the terminating chunk, so curl, requests, http.client and
  voxline_client all report an error. It is logged with the request id and counted in
  `voxline_stream_failures_total{stage}`.
- A client that takes nothing for `write_timeout_s` loses its stream (socket send timeout).

The tape reader is closed in one place: the `finally` of `_body` (or of `_first_audio` when it
raises before there is a body).
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response, g, request

from voxline.audio import AudioEncoderError
from voxline.request_context import NO_REQUEST, REQUEST_ID
from voxline.scheduler import SynthesisError
from voxline.server.errors import ApiError
from voxline.synthesis.plan import Plan
from voxline.synthesis.render import Source, open_source
from voxline.synthesis.services import Services
from voxline.tape import ClientGone, Part, RenderStalled

logger = logging.getLogger(__name__)
SEND_BUFFER_BYTES = 128 * 1024


class StreamAborted(RuntimeError):
    """Raised into the WSGI server to cut a response whose audio had started."""


class Framing(Protocol):
    """How a response frames the render's parts (raw audio bytes, or events)."""

    content_type: str | None  # None: the audio format's own

    def part(self, part: Part) -> bytes: ...

    def end(self) -> bytes: ...


class RawAudio:
    """The audio bytes as they are."""

    content_type = None

    def part(self, part: Part) -> bytes:
        return part.data

    def end(self) -> bytes:
        return b""


@dataclass
class Exchange:
    """The facts of one HTTP exchange that a response needs (taken from the request once)."""

    request_id: str
    route: str
    started: float
    sock: Any = None  # gunicorn's client socket, when there is one
    gone: Callable[[], bool] = field(default=lambda: False)

    @classmethod
    def current(cls, route: str) -> Exchange:
        sock = request.environ.get("gunicorn.socket")
        return cls(g.request_id, route, g.started, sock, client_gone_probe(sock))


def respond(services: Services, plan: Plan, exchange: Exchange,
            framing: Framing | None = None) -> Response:
    """Render `plan` and answer with its audio (streamed, or whole for `plan.whole`)."""
    framing = framing or RawAudio()
    source, first = _first_audio(services, plan, exchange)
    headers = {
        "X-Sample-Rate": str(plan.spec.sample_rate),
        "X-Voxline-Voice": plan.voice_name,
        "X-Voxline-Engine": services.engine_name,
        "X-Voxline-Cache": source.cache,
        "Cache-Control": "no-cache",
    }
    metrics = services.metrics
    metrics.cache.labels(source.cache).inc()
    content_type = framing.content_type or plan.spec.content_type
    if plan.whole:
        source.reader.close()
        metrics.ttfa.labels(exchange.route, source.cache).observe(
            time.perf_counter() - exchange.started)
        data = b"".join(framing.part(p) for p in first) + framing.end()
        return Response(data, headers=headers, content_type=content_type)
    headers["X-Accel-Buffering"] = "no"
    if exchange.sock is not None:
        exchange.sock.settimeout(services.settings.write_timeout_s)  # gunicorn resets it
        # A small kernel send buffer, so what counts as taken is near what the client read
        # (Linux grows it to megabytes: minutes of audio a stalled client would seem to take).
        exchange.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    body = _body(services, source, first, exchange, framing)
    return Response(body, headers=headers, content_type=content_type, direct_passthrough=True)


def _first_audio(services: Services, plan: Plan, exchange: Exchange) -> tuple[Source, list[Part]]:
    """Open the render and wait for its first audio (a whole render: all of it)."""
    stall_s = services.settings.render_stall_s
    for attempt in (1, 2):
        source = open_source(services, plan, exchange.request_id)
        try:
            return source, _read_audio(source, stall_s, exchange.gone, whole=plan.whole)
        except ClientGone:
            source.reader.close()
            raise ApiError(499, "client_closed", "client went away while waiting") from None
        except Exception:
            source.reader.close()
            # A shared render whose leader failed before any audio: render it ourselves once.
            if source.cache != "shared" or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _read_audio(source: Source, stall_s: float, gone: Callable[[], bool],
                whole: bool) -> list[Part]:
    """Parts up to the first that carries audio (whole: every part); [] at a clean end."""
    got: list[Part] = []
    while parts := source.reader.next_parts(stall_s, gone):
        got.extend(parts)
        if not whole and any(p.data for p in parts):
            break
    return got


def _body(services: Services, source: Source, first: list[Part], exchange: Exchange,
          framing: Framing) -> Iterator[bytes]:
    """The streamed body: owns the reader, times first audio, counts the stream, and turns a
    failure after the first byte into an abort."""
    settings, metrics = services.settings, services.metrics
    REQUEST_ID.set(exchange.request_id)  # log lines while streaming name their request
    metrics.active_streams.inc()
    parts, sent_at, timed = first, time.monotonic(), False
    try:
        while parts:
            data = b"".join(framing.part(p) for p in parts)
            sent_at = time.monotonic()
            if data:
                if not timed:
                    metrics.ttfa.labels(exchange.route, source.cache).observe(
                        time.perf_counter() - exchange.started)
                    timed = True
                yield data
            parts = source.reader.next_parts(settings.render_stall_s, exchange.gone)
        if tail := framing.end():
            yield tail
    except ClientGone:
        logger.info("client went away; stream ended")
    except GeneratorExit:
        blocked = time.monotonic() - sent_at
        if blocked >= 0.9 * settings.write_timeout_s:
            metrics.stream_failures.labels("write_timeout").inc()
            logger.warning("client took no audio for %.0f s; stream cancelled", blocked)
        raise
    except Exception as exc:
        stage = failure_stage(exc)
        metrics.stream_failures.labels(stage).inc()
        logger.error("stream aborted after audio started (%s): %s", stage, exc)
        raise StreamAborted(f"{stage} failure after audio started") from exc
    finally:
        source.reader.close()
        metrics.active_streams.dec()
        REQUEST_ID.set(NO_REQUEST)


def failure_stage(exc: BaseException) -> str:
    """Where a mid-stream failure happened, for the metric's `stage` label."""
    if isinstance(exc, SynthesisError):
        return "synthesis"
    if isinstance(exc, AudioEncoderError):
        return "encode"
    if isinstance(exc, RenderStalled):
        return "stall"
    return "internal"


def client_gone_probe(sock: Any) -> Callable[[], bool]:
    """A cheap check for a client that closed its connection (gunicorn exposes the socket)."""
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone

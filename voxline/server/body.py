"""Body: the HTTP response for a planned request, with failure semantics every client sees.

- Nothing is sent before the first audio: a failure until then (queue full, synthesis error,
  no audio at all) raises, and the route answers with a proper status and JSON body.
- After the first byte, a failure aborts the response: the generator raises, and gunicorn
  closes the connection without the terminating chunk, so curl, requests, http.client and
  voxline_client all report an error. It is logged with the request id and counted in
  `voxline_stream_failures_total{stage}`.
- A client that takes nothing for `write_timeout_s` loses its stream (socket send timeout).

The reader is closed in one place: the `finally` of the body (or of `prime` when it raises).
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable, Iterator

from flask import Response, g, request

from voxline.audio import AudioEncoderError
from voxline.scheduler import SynthesisError
from voxline.server import logctx
from voxline.server.errors import ApiError
from voxline.server.plan import Plan
from voxline.server.render import Source, open_source
from voxline.server.services import Services
from voxline.tape import ClientGone, RenderStalled, TapeReader

logger = logging.getLogger(__name__)
SEND_BUFFER_BYTES = 128 * 1024


class StreamAborted(RuntimeError):
    """Raised into the WSGI server to cut a response whose audio had started."""


def respond(services: Services, plan: Plan, route: str) -> Response:
    """Render `plan` and answer with its audio (streamed, or whole for `plan.whole`)."""
    gone = client_gone_probe(request.environ)
    source, first = _first_audio(services, plan, gone)
    headers = {
        "X-Sample-Rate": str(plan.spec.sample_rate),
        "X-Voxline-Voice": plan.voice_name,
        "X-Voxline-Engine": services.engine_name,
        "X-Voxline-Cache": source.cache,
        "Cache-Control": "no-cache",
    }
    metrics = services.metrics
    metrics.cache.labels(source.cache).inc()
    if plan.whole:
        source.reader.close()
        metrics.ttfa.labels(route, source.cache).observe(time.perf_counter() - g.started)
        return Response(first, headers=headers, content_type=plan.spec.content_type)
    headers["X-Accel-Buffering"] = "no"
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(services.settings.write_timeout_s)  # gunicorn resets it per request
        # A small kernel send buffer, so what counts as taken is near what the client read
        # (Linux grows it to megabytes: minutes of audio a stalled client would seem to take).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    body = _stream(services, source.reader, first, gone)
    body = metrics.observe_stream(body, route, source.cache, g.started)
    return Response(logctx.bind(g.request_id, body), headers=headers,
                    content_type=plan.spec.content_type, direct_passthrough=True)


def _first_audio(services: Services, plan: Plan,
                 gone: Callable[[], bool]) -> tuple[Source, bytes]:
    """Open the render and wait for its first audio (a whole render: all of it)."""
    stall_s = services.settings.render_stall_s
    for attempt in (1, 2):
        source = open_source(services, plan, g.request_id)
        try:
            return source, source.reader.next(stall_s, gone)
        except ClientGone:
            source.reader.close()
            raise ApiError(499, "client_closed", "client went away while waiting") from None
        except Exception:
            source.reader.close()
            # A shared render whose leader failed before any audio: render it ourselves once.
            if source.cache != "shared" or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stream(services: Services, reader: TapeReader, first: bytes,
            gone: Callable[[], bool]) -> Iterator[bytes]:
    settings = services.settings
    data, sent_at = first, time.monotonic()
    try:
        while data:
            sent_at = time.monotonic()
            yield data
            data = reader.next(settings.render_stall_s, gone)
    except ClientGone:
        logger.info("client went away; stream ended")
    except GeneratorExit:
        blocked = time.monotonic() - sent_at
        if blocked >= 0.9 * settings.write_timeout_s:
            services.metrics.stream_failures.labels("write_timeout").inc()
            logger.warning("client took no audio for %.0f s; stream cancelled", blocked)
        raise
    except Exception as exc:
        stage = failure_stage(exc)
        services.metrics.stream_failures.labels(stage).inc()
        logger.error("stream aborted after audio started (%s): %s", stage, exc)
        raise StreamAborted(f"{stage} failure after audio started") from exc
    finally:
        reader.close()


def failure_stage(exc: BaseException) -> str:
    """Where a mid-stream failure happened, for the metric's `stage` label."""
    if isinstance(exc, SynthesisError):
        return "synthesis"
    if isinstance(exc, AudioEncoderError):
        return "encode"
    if isinstance(exc, RenderStalled):
        return "stall"
    return "internal"


def client_gone_probe(environ: dict) -> Callable[[], bool]:
    """A cheap check for a client that closed its connection (gunicorn exposes the socket)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone

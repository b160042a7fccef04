"""From a validated request to the audio response: phrase cache, shared renders, metrics.

`plan_request` resolves voice, language and output format without touching the model. Then
`stream_response` answers from the phrase cache, or joins an identical render in progress, or
synthesises (`streaming.start_job` + `stream_body`) while keeping a copy for the cache. Only a
render that ran to its end (no client gone, no engine or encoder error) is stored.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Response, current_app, g, request

from voxline.audio import AudioFormatError, AudioPipeline, OutputSpec, resolve_output
from voxline.engines.base import Conditioning, SynthesisParams
from voxline.phrase_cache import Flight, PhraseCache, phrase_key
from voxline.server import logctx
from voxline.server.errors import bad_request
from voxline.server.metrics import Metrics
from voxline.server.params import TtsRequest
from voxline.server.services import Services
from voxline.server.streaming import (
    client_gone_probe,
    resolve_language,
    resolve_voice,
    start_job,
    stream_body,
)
from voxline.voices.cache import conditioning_digest

FOLLOW_GRACE_S = 30.0  # how much longer than the queue timeout a shared render may stall


@dataclass(frozen=True)
class Plan:
    """A request resolved against the loaded engine and voices; nothing held yet."""

    req: TtsRequest
    voice_name: str
    voice: Conditioning
    voice_digest: str
    language: str
    spec: OutputSpec
    default_format: str


def plan_request(
    services: Services, req: TtsRequest, default_format: str,
    voice: tuple[str, Conditioning] | None = None,
) -> Plan:
    """Resolve names and format; raise ApiError for the client. `voice` overrides the speaker."""
    services.require_ready()
    engine = services.engine
    language = resolve_language(req.language, engine.languages)
    if voice is None:
        name, conditioning = resolve_voice(services, req.speaker)
        digest = services.voices.digest(name) or conditioning_digest(conditioning)
    else:
        name, conditioning = voice
        digest = conditioning_digest(conditioning)
    try:
        spec = resolve_output(req.format, req.sample_rate, engine.sample_rate, default_format)
    except AudioFormatError as exc:
        raise bad_request("unsupported_format", str(exc), param="format") from exc
    return Plan(req, name, conditioning, digest, language, spec, default_format)


def cacheable(params: SynthesisParams) -> bool:
    """Forced output lengths are benchmark knobs (random-weight checkpoints): such requests
    measure synthesis, so the phrase cache leaves them alone."""
    return params.min_new_tokens is None and params.max_new_tokens is None


def render_key(services: Services, plan: Plan) -> str:
    """Everything that shapes a render's bytes."""
    return phrase_key(
        engine=services.engine.model_id, engine_info=services.engine.info(),
        voice=plan.voice_digest, text=plan.req.text, language=plan.language,
        params=dataclasses.asdict(plan.req.params), format=plan.spec.format,
        rate=plan.spec.sample_rate, level=services.settings.level,
        chunk_schedule=services.settings.chunk_schedule,  # XTTS crossfades at chunk edges
    )


def stream_response(services: Services, plan: Plan, *, route: str) -> Response:
    """The audio response for a planned request, streamed as it is produced."""
    phrases: PhraseCache = current_app.extensions["voxline.phrases"]
    metrics: Metrics = current_app.extensions["voxline.metrics"]
    reply = _Reply(services, plan, route, metrics)
    gone = client_gone_probe(request.environ)
    if not (plan.req.cache and phrases.enabled and cacheable(plan.req.params)):
        render = _synthesize(services, plan, reply.request_id, gone)
        return reply.stream(_plain(render, metrics), "bypass")
    key = render_key(services, plan)
    follow_timeout = services.settings.queue_timeout_s + FOLLOW_GRACE_S
    while True:
        found = phrases.lookup(key)
        if found.kind == "hit":
            return reply.whole(found.data, "hit")
        flight = found.flight
        if found.kind == "follow":
            if flight.wait_started(follow_timeout):
                return reply.stream(_follow(flight, follow_timeout), "shared")
            flight.leave()  # its leader failed before any audio: try again
            continue
        break

    def nobody_listens() -> bool:
        return gone() and flight.followers == 0

    try:
        render = _synthesize(services, plan, reply.request_id, nobody_listens)
    except BaseException:
        phrases.finish(key, plan.voice_digest, flight, ok=False)
        raise
    return reply.stream(_lead(render, phrases, key, plan.voice_digest, flight, metrics), "miss")


class _Reply:
    """Builds the response with its headers, counting it in the metrics."""

    def __init__(self, services: Services, plan: Plan, route: str, metrics: Metrics) -> None:
        self.plan = plan
        self.route = route
        self.metrics = metrics
        self.request_id = g.request_id
        self.started = g.get("started", time.perf_counter())
        self.headers = {
            "X-Sample-Rate": str(plan.spec.sample_rate),
            "X-Voxline-Voice": plan.voice_name,
            "X-Voxline-Engine": services.engine_name,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }

    def whole(self, data: bytes, cache: str) -> Response:
        self.metrics.cache.labels(cache).inc()
        self.metrics.ttfa.labels(self.route, cache).observe(time.perf_counter() - self.started)
        return Response(data, headers={**self.headers, "X-Voxline-Cache": cache},
                        content_type=self.plan.spec.content_type)

    def stream(self, body: Iterator[bytes], cache: str) -> Response:
        self.metrics.cache.labels(cache).inc()
        body = self.metrics.observe_stream(body, self.route, cache, self.started)
        return Response(logctx.bind(self.request_id, body),
                        headers={**self.headers, "X-Voxline-Cache": cache},
                        content_type=self.plan.spec.content_type, direct_passthrough=True)


class _Pipeline(AudioPipeline):
    """An AudioPipeline that remembers whether it encoded its stream to the end."""

    finished = False

    def finish(self) -> bytes:
        tail = super().finish()
        self.finished = True
        return tail


class _Probe:
    """The client-gone check handed to the scheduler, remembering whether it ever fired."""

    def __init__(self, gone: Callable[[], bool]) -> None:
        self._gone = gone
        self.fired = False

    def __call__(self) -> bool:
        self.fired = self.fired or self._gone()
        return self.fired


@dataclass
class _Render:
    """One synthesis in progress: its encoded body and what is known of how it ended."""

    body: Iterator[bytes]
    pipeline: _Pipeline
    probe: _Probe
    native_rate: int
    started: float = 0.0
    samples: int = 0
    chunks_ended: bool = False

    @property
    def complete(self) -> bool:
        return self.chunks_ended and self.pipeline.finished and not self.probe.fired

    def record(self, metrics: Metrics) -> None:
        """Observe the real-time factor of a complete synthesis."""
        if self.complete and self.samples:
            audio_s = self.samples / self.native_rate
            metrics.rtf.observe((time.perf_counter() - self.started) / audio_s)


def _synthesize(services: Services, plan: Plan, request_id: str,
                cancelled: Callable[[], bool]) -> _Render:
    """Take the model (waiting in the queue) and start encoding its chunks."""
    engine = services.engine
    pipeline = _Pipeline(plan.spec, engine.sample_rate, level=services.level)
    probe = _Probe(cancelled)
    render = _Render(iter(()), pipeline, probe, engine.sample_rate)
    try:
        job = start_job(services, plan.req, request_id, probe, plan.default_format,
                        voice=(plan.voice_name, plan.voice))
    except BaseException:
        pipeline.close()
        raise
    render.started = time.perf_counter()
    job.chunks = _count(job.chunks, render)
    render.body = stream_body(job, pipeline)
    return render


def _count(chunks: Iterator, render: _Render) -> Iterator:
    """Pass the engine's chunks through, counting samples and noting a natural end."""
    try:
        for chunk in chunks:
            render.samples += len(chunk)
            yield chunk
        render.chunks_ended = True
    finally:
        chunks.close()


def _plain(render: _Render, metrics: Metrics) -> Iterator[bytes]:
    try:
        yield from render.body
    finally:
        render.body.close()
        render.record(metrics)


def _lead(render: _Render, phrases: PhraseCache, key: str, group: str, flight: Flight,
          metrics: Metrics) -> Iterator[bytes]:
    """Stream a render to its client and to the requests sharing it; store it when complete."""
    ok = False
    try:
        for data in render.body:
            flight.append(data)
            yield data
        ok = render.complete
    except GeneratorExit:
        if flight.followers:  # our client left, others still listen: finish it for them
            for data in render.body:
                flight.append(data)
            ok = render.complete
        raise
    finally:
        render.body.close()
        phrases.finish(key, group, flight, ok)
        render.record(metrics)


def _follow(flight: Flight, timeout: float) -> Iterator[bytes]:
    try:
        yield from flight.follow(timeout)
    finally:
        flight.leave()

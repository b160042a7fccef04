"""From a validated request to response bytes: resolve names, take the model, encode."""

from __future__ import annotations

import logging
import select
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from voxline.audio import AudioFormatError, AudioPipeline, OutputSpec, resolve_output
from voxline.engines.base import Conditioning, Utterance
from voxline.scheduler import Cancelled, JobHandle, QueueFull
from voxline.server.errors import ApiError, bad_request
from voxline.server.params import TtsRequest
from voxline.server.services import Services
from voxline.text import split_text

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """A request resolved against the loaded engine and voices, admitted by the scheduler."""

    request_id: str
    voice_name: str
    language: str
    spec: OutputSpec
    handle: JobHandle
    chunks: Iterator[np.ndarray]

    def close(self) -> None:
        self.chunks.close()
        self.handle.close()


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


def resolve_language(
    requested: str | None, languages: tuple[str, ...], unavailable: Mapping[str, str] = {}
) -> str:
    if requested is None:
        return languages[0]
    code = requested.strip().lower()
    for candidate in (code, code.split("-")[0]):
        if candidate in languages:
            return candidate
        if candidate in unavailable:
            raise bad_request("unsupported_language",
                              f"language {candidate!r} is unavailable: {unavailable[candidate]}")
    raise bad_request("unsupported_language",
                      f"language {requested!r} is not one of {', '.join(languages)}")


def resolve_voice(services: Services, requested: str | None) -> tuple[str, Conditioning]:
    bank = services.voices
    name = requested if requested else bank.default
    voice = bank.get(name) if name else None
    if voice is None:
        raise ApiError(404, "unknown_speaker",
                       f"speaker {requested!r} not found; GET /speakers lists the voices")
    return name, voice


def start_job(
    services: Services, req: TtsRequest, request_id: str, cancelled: Callable[[], bool],
    default_format: str, voice: tuple[str, Conditioning] | None = None,
) -> Job:
    """Validate names and format, wait for the model; raise ApiError for the client.

    `voice` (name, conditioning) replaces the request's speaker: latents sent by a client.
    """
    services.require_ready()
    engine = services.engine
    language = resolve_language(req.language, engine.languages, engine.unavailable_languages)
    voice_name, voice = voice or resolve_voice(services, req.speaker)
    try:
        spec = resolve_output(req.format, req.sample_rate, engine.sample_rate, default_format)
    except AudioFormatError as exc:
        raise bad_request("unsupported_format", str(exc)) from exc
    sentences = split_text(req.text, engine.sentence_limit(language), language)
    if not sentences:
        raise bad_request("missing_text", "text has nothing to speak")
    utterances = [Utterance(s, voice, language, req.params) for s in sentences]
    scheduler = services.scheduler
    try:
        handle = scheduler.submit(request_id, engine, utterances, cancelled)
        handle.wait_admitted(scheduler.wait_timeout_s)
    except QueueFull as exc:
        raise ApiError(503, "queue_full", str(exc), {"Retry-After": str(exc.retry_after)}) from exc
    except Cancelled as exc:
        raise ApiError(499, "client_closed", "client went away while waiting") from exc
    return Job(request_id, voice_name, language, spec, handle, handle.chunks())


def stream_body(job: Job, pipeline: AudioPipeline) -> Iterator[bytes]:
    """Yield encoded audio while it is generated; end (logged) on any synthesis error."""
    try:
        header = pipeline.header()
        if header:
            yield header
        for chunk in job.chunks:
            data = pipeline.feed(chunk)
            if data:
                yield data
        tail = pipeline.finish()
        if tail:
            yield tail
    except Exception:
        logger.exception("[%s] synthesis failed; ending the stream", job.request_id)
    finally:
        job.close()
        pipeline.close()

"""Render: a plan's audio onto a tape, from the phrase cache or from a synthesis.

A synthesis runs in a thread of its own (`_produce`): it waits for a model slot, encodes the
engine's chunks and writes them to the tape at synthesis speed. Clients read the tape at
their own pace, so identical requests share one synthesis without depending on each other's
sockets. The scheduler sees what the furthest reader has taken (backpressure), and cancels the
synthesis once no reader is left. Only a complete render of plausible length is cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxline.audio import AudioPipeline, encode_whole
from voxline.phrase_cache import plausible_duration
from voxline.request_context import REQUEST_ID
from voxline.scheduler import JobHandle
from voxline.server.errors import NoAudio
from voxline.server.plan import Plan, render_key
from voxline.server.services import Services
from voxline.tape import Tape, TapeReader

logger = logging.getLogger(__name__)
OnEnd = Callable[[BaseException | None, float], None]  # (error or None, audio seconds)


@dataclass
class Source:
    """What a response reads: a reader on a tape, and where the tape came from."""

    reader: TapeReader
    cache: str  # "hit", "shared", "miss" or "bypass"


def open_source(services: Services, plan: Plan, request_id: str) -> Source:
    """A tape for `plan`: a cached render, a render in progress, or a new synthesis."""
    phrases = services.phrases
    if not (plan.use_cache and phrases.enabled):
        tape = Tape(keep=False)
        reader = tape.reader()
        _start(services, plan, request_id, tape, on_end=lambda _error, _s: None)
        return Source(reader, "bypass")
    key = render_key(services, plan)
    found = phrases.lookup(key)
    if found.kind == "hit":
        tape = Tape()
        tape.write(found.data, 0.0)
        tape.close()
        return Source(tape.reader(), "hit")
    if found.kind == "follow":
        return Source(found.reader, "shared")
    reader = found.reader
    tape = reader.tape

    def on_end(error: BaseException | None, audio_s: float) -> None:
        try:
            if error is None:
                _store(services, plan, key, tape, audio_s)
        finally:
            phrases.release(key, tape)

    _start(services, plan, request_id, tape, on_end)
    return Source(reader, "miss")


def _store(services: Services, plan: Plan, key: str, tape: Tape, audio_s: float) -> None:
    if plausible_duration(plan.text, audio_s):
        services.phrases.store(key, plan.voice_digest, tape.data())
    else:
        logger.warning("not caching a render of %.2f s for %d characters: implausible length",
                       audio_s, len(plan.text))


def _start(services: Services, plan: Plan, request_id: str, tape: Tape,
           on_end: OnEnd) -> None:
    thread = threading.Thread(target=_produce, args=(services, plan, request_id, tape, on_end),
                              name=f"voxline-render-{request_id[:8]}", daemon=True)
    thread.start()


def _produce(services: Services, plan: Plan, request_id: str, tape: Tape,
             on_end: OnEnd) -> None:
    """Synthesise `plan` onto `tape`; the tape ends complete or carrying the error."""
    REQUEST_ID.set(request_id)
    audio_s, error = 0.0, None
    try:
        handle = _admit(services, plan, request_id, tape)
        write = _write_whole if plan.whole else _write_stream
        audio_s = write(services, plan, handle, tape)
        if audio_s == 0:
            raise NoAudio("the engine produced no audio")
        services.metrics.rtf.observe((time.monotonic() - tape.started_at) / audio_s)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the readers
        error = exc
        if tape.readers:
            logger.error("render failed: %s: %s", type(exc).__name__, exc)
    # Stored (and released) before the readers see the end, so that a request arriving once
    # a reader is done finds the cached file.
    try:
        on_end(error, audio_s)
    finally:
        tape.close(error)


def _admit(services: Services, plan: Plan, request_id: str, tape: Tape) -> JobHandle:
    consumed = None if plan.whole else tape.consumed_s
    handle = admit(services, plan, request_id, lambda: tape.readers == 0, consumed)
    tape.start()
    return handle


def admit(services: Services, plan: Plan, request_id: str, gone: Callable[[], bool],
          consumed: Callable[[], float] | None = None) -> JobHandle:
    """Queue a plan's sentences and wait for a model slot; its `chunks()` are float32 at the
    engine's rate. For callers that encode themselves (realtime sessions: one encoder per
    context across segments). Raises QueueFull, QueueTimeout or Cancelled."""
    scheduler = services.scheduler
    handle = scheduler.submit(request_id, services.engine, plan.utterances(),
                              client_gone=gone, consumed=consumed)
    handle.wait_admitted(scheduler.wait_timeout_s)
    return handle


def _write_stream(services: Services, plan: Plan, handle: JobHandle, tape: Tape) -> float:
    """Encode chunks as they come; the header goes out with the first audio."""
    rate = services.engine.sample_rate
    pipeline = AudioPipeline(plan.spec, rate, level=services.level)
    header, samples = pipeline.header(), 0
    try:
        for chunk in handle.chunks():
            samples += len(chunk)
            data = pipeline.feed(chunk)
            if data:
                tape.write(header + data, samples / rate)
                header = b""
            else:
                tape.touch()
        if samples:
            tape.write(header + pipeline.finish(), samples / rate)
    finally:
        pipeline.close()
    return samples / rate


def _write_whole(services: Services, plan: Plan, handle: JobHandle, tape: Tape) -> float:
    """Collect the utterance, then encode it as one complete file."""
    rate = services.engine.sample_rate
    chunks: list[np.ndarray] = []
    for chunk in handle.chunks():
        chunks.append(chunk)
        tape.touch()
    samples = sum(len(c) for c in chunks)
    if samples:
        tape.write(encode_whole(plan.spec, rate, chunks, level=services.level), samples / rate)
    return samples / rate

"""Render: a plan's audio onto a tape, from the phrase cache or from a synthesis.

A synthesis runs in a thread of its own (`_produce`): it waits for a model slot, encodes the
engine's chunks and writes them to the tape at synthesis speed, each part with the words whose
last sample it carries. Clients read the tape at their own pace, so identical requests share
one synthesis without depending on each other's sockets. The scheduler sees what the furthest
reader has taken (backpressure), and cancels the synthesis once no reader is left. Only a
complete render of plausible length is cached.

Every door renders through `open_source`: HTTP responses (a fresh encoder per render) and
realtime sessions (one encoder per context, continued across its segments: `encoder=`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxline.audio import AudioPipeline, encode_whole
from voxline.engines.base import chunk_parts
from voxline.phrase_cache import plausible_duration
from voxline.request_context import REQUEST_ID
from voxline.scheduler import JobHandle
from voxline.synthesis.errors import NoAudio
from voxline.synthesis.plan import Plan, render_key
from voxline.synthesis.services import Services
from voxline.synthesis.words import WordMark
from voxline.tape import Tape, TapeReader

logger = logging.getLogger(__name__)
OnEnd = Callable[[BaseException | None, float], None]  # (error or None, audio seconds)


@dataclass
class Source:
    """What a door reads: a reader on a tape, and where the tape came from."""

    reader: TapeReader
    cache: str  # "hit", "shared", "miss" or "bypass"


def open_source(services: Services, plan: Plan, request_id: str,
                encoder: AudioPipeline | None = None,
                cancelled: Callable[[], bool] = lambda: False) -> Source:
    """A tape for `plan`: a cached render, a render in progress, or a new synthesis.

    `encoder`: the caller's own encoder, continued (its header and tail are the caller's);
    such a render is never cached or shared. `cancelled`: the caller's own cancel flag, for a
    render that must stop before anyone reads it (a session segment waiting its turn)."""
    phrases = services.phrases
    if encoder is not None or not (plan.use_cache and phrases.enabled):
        tape = Tape(keep=False)
        reader = tape.reader()
        gone = _gone(tape, cancelled)
        _start(services, plan, request_id, tape, gone, encoder, lambda _e, _s: None)
        return Source(reader, "bypass")
    key = render_key(services, plan)
    found = phrases.lookup(key)
    if found.kind == "hit":
        tape = Tape()
        data, words = unpack(found.data) if plan.timestamps else (found.data, ())
        tape.write(data, 0.0, words)
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

    _start(services, plan, request_id, tape, _gone(tape, cancelled), None, on_end)
    return Source(reader, "miss")


def _gone(tape: Tape, cancelled: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: tape.readers == 0 or cancelled()


def _store(services: Services, plan: Plan, key: str, tape: Tape, audio_s: float) -> None:
    if plausible_duration(plan.text, audio_s):
        data = pack(tape.data(), tape.words()) if plan.timestamps else tape.data()
        services.phrases.store(key, plan.voice_digest, data)
    else:
        logger.warning("not caching a render of %.2f s for %d characters: implausible length",
                       audio_s, len(plan.text))


def _start(services: Services, plan: Plan, request_id: str, tape: Tape,
           gone: Callable[[], bool], encoder: AudioPipeline | None, on_end: OnEnd) -> None:
    thread = threading.Thread(
        target=_produce, args=(services, plan, request_id, tape, gone, encoder, on_end),
        name=f"voxline-render-{request_id[:8]}", daemon=True)
    thread.start()


def _produce(services: Services, plan: Plan, request_id: str, tape: Tape,
             gone: Callable[[], bool], encoder: AudioPipeline | None, on_end: OnEnd) -> None:
    """Synthesise `plan` onto `tape`; the tape ends complete or carrying the error."""
    REQUEST_ID.set(request_id)
    audio_s, error = 0.0, None
    try:
        handle = _admit(services, plan, request_id, tape, gone)
        if plan.whole:
            audio_s = _write_whole(services, plan, handle, tape)
        else:
            audio_s = _write_stream(services, plan, handle, tape, encoder)
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


def _admit(services: Services, plan: Plan, request_id: str, tape: Tape,
           gone: Callable[[], bool]) -> JobHandle:
    """Queue the plan's sentences and wait for a model slot (QueueFull, QueueTimeout or
    Cancelled reach the readers through the tape)."""
    scheduler = services.scheduler
    consumed = None if plan.whole else tape.consumed_s
    handle = scheduler.submit(request_id, services.engine, plan.utterances(),
                              client_gone=gone, consumed=consumed)
    handle.wait_admitted(scheduler.wait_timeout_s)
    tape.start()
    return handle


def _write_stream(services: Services, plan: Plan, handle: JobHandle, tape: Tape,
                  encoder: AudioPipeline | None) -> float:
    """Encode chunks as they come, each part with its words; the header (of an encoder made
    here) goes out with the first audio, and its tail at the end."""
    rate = services.engine.sample_rate
    own = encoder is None
    pipeline = AudioPipeline(plan.spec, rate, level=services.level) if own else encoder
    clock, pauses = plan.word_clock(rate), Pauses(plan, rate)
    header, samples = (pipeline.header() if own else b""), 0
    try:
        for sentence, chunk in _with_pauses(handle, pauses):
            audio, words = chunk_parts(chunk)
            marks = clock.marks(sentence, samples, words) if words else ()
            samples += len(audio)
            data = pipeline.feed(audio) if len(audio) else b""
            if data or marks:
                tape.write(header + data, samples / rate, marks)
                header = b"" if data else header
            else:
                tape.touch()
        if samples and own:
            tape.write(header + pipeline.finish(), samples / rate)
    finally:
        if own:
            pipeline.close()
    return samples / rate


def _write_whole(services: Services, plan: Plan, handle: JobHandle, tape: Tape) -> float:
    """Collect the utterance, then encode it as one complete file (words with it)."""
    rate = services.engine.sample_rate
    clock = plan.word_clock(rate)
    chunks: list[np.ndarray] = []
    marks: list = []
    samples = 0
    for sentence, chunk in _with_pauses(handle, Pauses(plan, rate)):
        audio, words = chunk_parts(chunk)
        marks.extend(clock.marks(sentence, samples, words))
        samples += len(audio)
        chunks.append(audio)
        tape.touch()
    if samples:
        data = encode_whole(plan.spec, rate, chunks, level=services.level)
        tape.write(data, samples / rate, tuple(marks))
    return samples / rate


class Pauses:
    """The silences of a plan (SSML breaks), in samples: before each line and after the last."""

    def __init__(self, plan: Plan, rate: int) -> None:
        self.before = [round(line.pause_ms * rate / 1000) for line in plan.lines]
        self.tail = round(plan.tail_pause_ms * rate / 1000)
        self.next = 0  # the first line whose pause is still to come

    def upto(self, line: int) -> int:
        """Samples of silence due before `line` starts (once each)."""
        due = sum(self.before[self.next:line + 1])
        self.next = max(self.next, line + 1)
        return due

    def rest(self) -> int:
        return self.upto(len(self.before) - 1) + self.tail


def _with_pauses(handle: JobHandle, pauses: Pauses):
    """The job's (line, chunk) pairs with each line's silence before its first chunk and the
    plan's last silence at the end: exact to the sample."""
    line = -1
    for line, chunk in handle.timed_chunks():
        if silence := pauses.upto(line):
            yield line, np.zeros(silence, dtype=np.float32)
        yield line, chunk
    if silence := pauses.rest():
        yield max(line, 0), np.zeros(silence, dtype=np.float32)


def pack(data: bytes, words: tuple[WordMark, ...]) -> bytes:
    """A cached render with its word timings: a 4-byte length, the words as JSON, the audio."""
    meta = json.dumps([dataclasses.asdict(w) for w in words]).encode()
    return len(meta).to_bytes(4, "big") + meta + data


def unpack(blob: bytes) -> tuple[bytes, tuple[WordMark, ...]]:
    size = int.from_bytes(blob[:4], "big")
    words = tuple(WordMark(**w) for w in json.loads(blob[4:4 + size]))
    return blob[4 + size:], words

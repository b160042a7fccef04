"""Runs VoxlineTTSService in a real Pipecat pipeline (inside the pipecat venv) and reports.

Usage: pipecat_driver.py URL OUT_DIR SCENARIO  (speak | interrupt | heard)
Writes OUT_DIR/turn-N.pcm (s16le audio of each turn, as the pipeline received it) and prints one
JSON report line: per turn its samples, whether it stopped, and the server messages seen.

`heard` (a Piper server) plays the audio through an output transport that takes it at a real
device's pace, with Pipecat's assistant aggregator behind it, interrupts in the middle of a word
and reports the assistant context and how much audio had been played.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

from voxline_client.pipecat import VoxlineTTSService

RATE = 16000
FIRST = "Hello from Pipecat. This reply streams in token by token, as an LLM writes it. "
LONG = "The caller will interrupt this long answer before it can finish speaking. " * 6
SECOND = "Sorry, go ahead."
REPLY = (
    "Your order of three blue umbrellas shipped on Monday, and the courier expects to deliver "
    "it to your front door by Thursday afternoon. If nobody is home, the parcel waits at the "
    "post office on Maple Street for seven days."
)


class Collector(FrameProcessor):
    """Records the audio and stops the TTS sends downstream, by context."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: dict[str, bytearray] = {}
        self.order: list[str] = []
        self.stopped: set[str] = set()
        self.errors: list[str] = []
        self.at_interruption: int | None = None  # the first context's bytes when cut

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            if frame.context_id not in self.audio:
                self.order.append(frame.context_id)
            self.audio.setdefault(frame.context_id, bytearray()).extend(frame.audio)
        elif isinstance(frame, TTSStoppedFrame):
            self.stopped.add(frame.context_id)
        elif isinstance(frame, ErrorFrame):
            self.errors.append(frame.error)
        elif isinstance(frame, InterruptionFrame) and self.order:
            self.at_interruption = len(self.audio[self.order[0]])
        await self.push_frame(frame, direction)


class Recording(VoxlineTTSService):
    """The service under test, keeping what the server sent (for the report only)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.messages: list[dict] = []

    async def _handle(self, message: dict) -> None:
        summary = {k: len(v) if k == "audio" else v for k, v in message.items()}
        self.messages.append({**summary, "at": time.monotonic()})
        await super()._handle(message)


class Speaker(BaseOutputTransport):
    """An output device playing at a fixed rate from a small buffer (as a sound card does): a
    write returns once the buffer has room; `played` counts what has come out of it."""

    BUFFER_BYTES = RATE * 2 * 80 // 1000  # 80 ms

    def __init__(self) -> None:
        super().__init__(
            TransportParams(audio_out_enabled=True, audio_out_10ms_chunks=2),
            name="speaker",
        )
        self.written = 0  # bytes
        self.playing_since: float | None = None  # when the device would have started them
        self.played_before = 0  # bytes played before the device last ran dry

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    @property
    def played(self) -> int:
        """Bytes played by now."""
        if self.playing_since is None:
            return self.played_before
        elapsed = (time.monotonic() - self.playing_since) * RATE * 2
        return min(self.written, self.played_before + int(elapsed) // 2 * 2)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self.played >= self.written:  # ran dry: playout starts again now
            self.played_before, self.playing_since = self.written, time.monotonic()
        self.written += len(frame.audio)
        while (excess := self.written - self.played - self.BUFFER_BYTES) > 0:
            await asyncio.sleep(max(0.001, excess / 2 / RATE))
        return True


def words_of(tts: Recording) -> list[dict]:
    return [w for m in tts.messages if m["type"] == "speech.words" for w in m["words"]]


async def heard(
    task: PipelineWorker, tts: Recording, speaker: Speaker, context: LLMContext
) -> dict:
    """A reply cut in the middle of a word after a second of playout, then a short reply."""
    await task.queue_frame(LLMFullResponseStartFrame())
    await task.queue_frame(LLMTextFrame(REPLY))

    def target() -> dict | None:
        """The longest word between 1 and 3 s: cut in its middle, its end is 150 ms or more
        away, more than Pipecat's word clock leads the device on a loaded machine."""
        words = [w for w in words_of(tts) if 1000 < w["start_ms"] and w["end_ms"] < 3000]
        if not words or words_of(tts)[-1]["end_ms"] < 3000:
            return None
        return max(words, key=lambda w: w["end_ms"] - w["start_ms"])

    assert await wait_until(lambda: target() is not None, 30), "no word timings arrived"
    word = target()
    middle_ms = (word["start_ms"] + word["end_ms"]) / 2

    def played_ms() -> float:
        return speaker.played / 2 / RATE * 1000

    assert await wait_until(lambda: played_ms() >= middle_ms, 30), "the audio did not play"
    report = {"played_ms": played_ms(), "cut_word": word}
    await task.queue_frame(InterruptionFrame())
    await wait_until(lambda: any(m["type"] == "context.cancelled" for m in tts.messages), 5)
    await asyncio.sleep(0.5)
    report["context_after_cut"] = [dict(m) for m in context.get_messages()]
    await say(task, SECOND)
    report["finished"] = await wait_until(lambda: len(context.get_messages()) >= 2, 30)
    report["context"] = [dict(m) for m in context.get_messages()]
    report["words"] = words_of(tts)
    return report


async def say(task: PipelineWorker, text: str, token_s: float = 0.02) -> None:
    """Queue one LLM reply, token by token, as an LLM service would."""
    await task.queue_frame(LLMFullResponseStartFrame())
    for token in text.split(" "):
        await task.queue_frame(LLMTextFrame(token + " "))
        await asyncio.sleep(token_s)
    await task.queue_frame(LLMFullResponseEndFrame())


async def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def scenario(task: PipelineWorker, tts: Recording, sink: Collector, name: str) -> dict:
    report: dict = {}
    if name == "speak":
        await say(task, FIRST)
        report["llm_end_at"] = time.monotonic()
        report["finished"] = await wait_until(lambda: len(sink.stopped) >= 1, 30)
        return report
    # interrupt: a long reply, cut after half a second of audio, then a new reply.
    await task.queue_frame(LLMFullResponseStartFrame())
    await task.queue_frame(LLMTextFrame(LONG))
    await wait_until(lambda: sink.order and len(sink.audio[sink.order[0]]) >= RATE, 30)
    report["interrupted_at"] = time.monotonic()
    await task.queue_frame(InterruptionFrame())
    await wait_until(lambda: any(m["type"] == "context.cancelled" for m in tts.messages), 5)
    await asyncio.sleep(0.5)
    # What reached the sink before the interruption did (audio already on its way from the
    # service may pass the point where the interruption was queued).
    report["interrupted_after_bytes"] = sink.at_interruption
    report["bytes_half_second_after"] = len(sink.audio[sink.order[0]])
    await say(task, SECOND)
    report["finished"] = await wait_until(lambda: len(sink.stopped - {sink.order[0]}) >= 1, 30)
    return report


async def main(url: str, out: Path, name: str) -> dict:
    if name == "heard":  # Piper on a loaded CPU can take more than Pipecat's default 3 s
        tts = Recording(base_url=url, voice="joe", stop_frame_timeout_s=15)
    else:
        tts = Recording(base_url=url, voice="tone-a")
    sink = Collector()
    speaker = Speaker()
    context = LLMContext()
    if name == "heard":
        stages = [tts, speaker, LLMAssistantAggregator(context), sink]
    else:
        stages = [tts, sink]
    task = PipelineWorker(
        Pipeline(stages),
        params=PipelineParams(audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    workers = WorkerRunner(handle_sigint=False)
    await workers.add_workers(task)
    runner = asyncio.create_task(workers.run())
    if not await wait_until(lambda: tts._websocket is not None, 10):
        raise SystemExit("the pipeline did not start or its session did not connect")
    if name == "heard":
        report = await heard(task, tts, speaker, context)
    else:
        report = await scenario(task, tts, sink, name)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(runner, 10)
    for n, context_id in enumerate(sink.order):
        (out / f"turn-{n}.pcm").write_bytes(bytes(sink.audio[context_id]))
    report.update(
        texts={"speak": FIRST, "long": LONG, "second": SECOND, "reply": REPLY},
        rate=RATE,
        contexts=sink.order,
        stopped=sorted(sink.stopped),
        errors=sink.errors,
        messages=tts.messages,
    )
    return report


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    result = asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
    print(json.dumps(result))

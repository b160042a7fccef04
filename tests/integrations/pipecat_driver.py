"""Runs VoxlineTTSService in a real Pipecat pipeline (inside the pipecat venv) and reports.

Usage: pipecat_driver.py URL OUT_DIR SCENARIO  (speak | interrupt)
Writes OUT_DIR/turn-N.pcm (s16le audio of each turn, as the pipeline received it) and prints one
JSON report line: per turn its samples, whether it stopped, and the server messages seen.
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
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from voxline_client.pipecat import VoxlineTTSService

RATE = 16000
FIRST = "Hello from Pipecat. This reply streams in token by token, as an LLM writes it. "
LONG = "The caller will interrupt this long answer before it can finish speaking. " * 6
SECOND = "Sorry, go ahead."


class Collector(FrameProcessor):
    """Records the audio and stops the TTS sends downstream, by context."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: dict[str, bytearray] = {}
        self.order: list[str] = []
        self.stopped: set[str] = set()
        self.errors: list[str] = []

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
    report["interrupted_after_bytes"] = len(sink.audio[sink.order[0]])
    report["interrupted_at"] = time.monotonic()
    await task.queue_frame(InterruptionFrame())
    await wait_until(lambda: any(m["type"] == "context.cancelled" for m in tts.messages), 5)
    await asyncio.sleep(0.5)
    report["bytes_half_second_after"] = len(sink.audio[sink.order[0]])
    await say(task, SECOND)
    report["finished"] = await wait_until(lambda: len(sink.stopped - {sink.order[0]}) >= 1, 30)
    return report


async def main(url: str, out: Path, name: str) -> dict:
    tts = Recording(base_url=url, voice="tone-a")
    sink = Collector()
    task = PipelineWorker(
        Pipeline([tts, sink]),
        params=PipelineParams(audio_out_sample_rate=RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    workers = WorkerRunner(handle_sigint=False)
    await workers.add_workers(task)
    runner = asyncio.create_task(workers.run())
    if not await wait_until(lambda: tts._websocket is not None, 10):
        raise SystemExit("the pipeline did not start or its session did not connect")
    report = await scenario(task, tts, sink, name)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(runner, 10)
    for n, context_id in enumerate(sink.order):
        (out / f"turn-{n}.pcm").write_bytes(bytes(sink.audio[context_id]))
    report.update(
        texts={"speak": FIRST, "long": LONG, "second": SECOND},
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

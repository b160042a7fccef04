"""voxline_client.livekit against a real gunicorn (tone engine), inside the real livekit-agents."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import requests

from tests.integrations.conftest import (
    TONE_RATE,
    dominant_hz,
    longest_silence_ms,
    tone_samples,
)

pytestmark = pytest.mark.slow
livekit_tts = pytest.importorskip("livekit.agents.tts")


def make_tts(server, **options):
    from voxline_client.livekit import TTS

    return TTS(base_url=server.url, voice="tone-a", sample_rate=TONE_RATE, **options)


def pcm(frames) -> np.ndarray:
    """The samples of LiveKit frames, less the 10 ms zero marker its emitter ends a segment with."""
    data = b"".join(bytes(frame.data) for frame in frames)
    audio = np.frombuffer(data, "<i2").astype(np.float32) / 32768
    marker = frames[-1].samples_per_channel if frames else 0
    if marker == TONE_RATE // 100 and not audio[-marker:].any():
        audio = audio[:-marker]
    return audio


def active_streams(server) -> float:
    for line in requests.get(server.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("voxline_active_streams "):
            return float(line.split()[1])
    raise AssertionError("voxline_active_streams is not in /metrics")


def test_synthesize_speaks_the_text(tone_server):
    text = "Hello from LiveKit."

    async def run():
        tts = make_tts(tone_server)
        try:
            frames = [ev.frame async for ev in tts.synthesize(text)]
        finally:
            await tts.aclose()
        return frames

    frames = asyncio.run(asyncio.wait_for(run(), 60))
    assert {f.sample_rate for f in frames} == {TONE_RATE}
    assert {f.num_channels for f in frames} == {1}
    audio = pcm(frames)
    assert len(audio) == tone_samples(text)
    assert np.sqrt(np.mean(audio**2)) > 0.2
    assert dominant_hz(audio, TONE_RATE) == pytest.approx(440, abs=5)


def test_stream_speaks_deltas_before_the_text_is_complete(tone_server):
    first = "The first sentence arrives word by word. "
    rest = "And the second one follows after audio has started."

    async def run():
        tts = make_tts(tone_server, max_buffer_delay_ms=200)
        stream = tts.stream()
        frames, first_audio_at = [], None
        for word in first.split(" "):
            stream.push_text(word + " ")
            await asyncio.sleep(0.03)
        async for ev in stream:  # audio of the first sentence, the rest not yet sent
            frames.append(ev.frame)
            first_audio_at = time.monotonic()
            break
        for word in rest.split(" "):
            stream.push_text(word + " ")
        stream.flush()
        stream.end_input()
        frames += [ev.frame async for ev in stream]
        await stream.aclose()
        await tts.aclose()
        return frames, first_audio_at

    frames, first_audio_at = asyncio.run(asyncio.wait_for(run(), 60))
    assert first_audio_at is not None
    audio = pcm(frames)
    # Every character is spoken once (segments split at spaces, which are not spoken).
    expected = tone_samples(first + rest)
    assert abs(len(audio) - expected) <= 3 * TONE_RATE * (1 / 14)
    assert dominant_hz(audio, TONE_RATE) == pytest.approx(440, abs=5)
    assert longest_silence_ms(audio, TONE_RATE) < 5


def test_closing_a_stream_cancels_its_context(tone_server):
    long_text = "This goes on and on so that the caller has time to interrupt it. " * 6

    async def run():
        tts = make_tts(tone_server)
        stream = tts.stream()
        stream.push_text(long_text)
        stream.flush()
        received = 0
        async for ev in stream:
            received += ev.frame.samples_per_channel
            if received >= TONE_RATE // 2:
                break
        started = time.monotonic()
        await stream.aclose()  # what AgentSession does when the user barges in
        closed_in = time.monotonic() - started
        await tts.aclose()
        return received, stream.cancel_ack, closed_in

    received, ack, closed_in = asyncio.run(asyncio.wait_for(run(), 60))
    assert ack is not None and ack["type"] == "context.cancelled"
    assert closed_in < 1.0
    # The ack accounts for at least the audio that reached LiveKit, far less than the text.
    assert ack["audio_ms"] >= received * 1000 / TONE_RATE - 1
    assert ack["audio_ms"] < tone_samples(long_text) * 1000 / TONE_RATE / 2
    deadline = time.monotonic() + 2
    while active_streams(tone_server) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert active_streams(tone_server) == 0


def test_a_bad_voice_is_a_non_retryable_error(tone_server):
    from livekit.agents import APIStatusError

    async def run():
        from voxline_client.livekit import TTS

        tts = TTS(base_url=tone_server.url, voice="no-such-voice", sample_rate=TONE_RATE)
        try:
            async for _ in tts.synthesize("Hello."):
                pass
        finally:
            await tts.aclose()

    with pytest.raises(APIStatusError) as err:
        asyncio.run(asyncio.wait_for(run(), 60))
    assert err.value.status_code == 400 and not err.value.retryable

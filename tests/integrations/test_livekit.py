"""voxline_client.livekit against a real gunicorn (tone engine; Piper for the words heard),
inside the real livekit-agents."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import requests

from tests.integrations.conftest import (
    TONE_RATE,
    dominant_hz,
    heard_text,
    longest_silence_ms,
    tone_samples,
)

pytestmark = pytest.mark.slow
livekit_tts = pytest.importorskip("livekit.agents.tts")


def make_tts(server, **options):
    from voxline_client.livekit import TTS

    return TTS(**{"base_url": server.url, "voice": "tone-a", "sample_rate": TONE_RATE, **options})


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


PIPER_RATE = 22050
REPLY = (
    "Your order of three blue umbrellas shipped on Monday, and the courier expects to deliver "
    "it to your front door by Thursday afternoon. If nobody is home, the parcel waits at the "
    "post office on Maple Street for seven days."
)


def timed_strings(frames) -> list:
    from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

    return [t for f in frames for t in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]


def test_timed_words_come_with_the_audio_they_describe(piper_server):
    """A stream's TimedStrings spell the text it was sent, each arriving no later than the
    frame that carries its last sample, with times on the stream's audio."""
    text = "Hello, Dr. Smith! It costs $5 today; we'll see you at 9:30."

    async def run():
        tts = make_tts(piper_server, voice="joe", sample_rate=PIPER_RATE)
        assert tts.capabilities.aligned_transcript
        stream = tts.stream()
        for word in text.split(" "):
            stream.push_text(word + " ")
        stream.end_input()
        frames = [ev.frame async for ev in stream]
        await stream.aclose()
        whole = [ev.frame async for ev in tts.synthesize(text)]
        await tts.aclose()
        return frames, whole

    frames, whole = asyncio.run(asyncio.wait_for(run(), 60))
    assert "".join(timed_strings(whole)) == text  # synthesize() times its words too
    words = timed_strings(frames)
    assert "".join(words) == text + " "  # the text as pushed (word by word, with spaces)
    assert [w.strip() for w in words if w.strip()][:4] == ["Hello,", "Dr.", "Smith!", "It"]
    assert "$5" in [w.strip() for w in words]
    ends = [w.end_time for w in words]
    assert ends == sorted(ends) and all(w.start_time <= w.end_time for w in words)
    audio_s = sum(f.duration for f in frames)
    assert ends[-1] <= audio_s + 0.001  # times are rounded to 0.1 ms
    elapsed, arrived = 0.0, 0
    for frame in frames:  # a word not yet arrived ends after every frame so far
        elapsed += frame.duration
        arrived += len(timed_strings([frame]))
        assert all(w.end_time > elapsed - 0.001 for w in words[arrived:])


def make_speaker():
    """An output device for LiveKit (an `io.AudioOutput` with a playout clock, like a room's
    audio track): frames play at real-time pace from when the first one arrives."""
    import time

    from livekit.agents.voice import io

    class _Speaker(io.AudioOutput):
        def __init__(self) -> None:
            super().__init__(
                label="speaker",
                next_in_chain=None,
                sample_rate=PIPER_RATE,
                capabilities=io.AudioOutputCapabilities(pause=False),
            )
            self.pushed = 0.0
            self.started_at: float | None = None
            self.stopped_at: float | None = None  # the barge-in: the clock stops there
            self.words: list = []
            self._done: asyncio.TimerHandle | None = None

        def played(self) -> float:
            if self.started_at is None:
                return 0.0
            now = self.stopped_at if self.stopped_at is not None else time.time()
            return min(self.pushed, now - self.started_at)

        async def capture_frame(self, frame) -> None:
            await super().capture_frame(frame)
            self.words += timed_strings([frame])
            self.pushed += frame.duration
            if self.started_at is None:
                self.started_at = time.time()
                self.on_playback_started(created_at=self.started_at)

        def flush(self) -> None:
            super().flush()
            delay = max(0.0, self.pushed - self.played())
            pushed = self.pushed
            self._done = asyncio.get_event_loop().call_later(
                delay, lambda: self._finish(pushed, interrupted=False)
            )

        def clear_buffer(self) -> None:
            if self._done:
                self._done.cancel()
            if self.pushed:
                self._finish(self.played(), interrupted=True)

        def _finish(self, position: float, *, interrupted: bool) -> None:
            self.pushed, self.started_at, self.stopped_at, self._done = 0.0, None, None, None
            self.on_playback_finished(playback_position=position, interrupted=interrupted)

    return _Speaker()


def test_an_interrupted_agent_records_the_words_heard(piper_server):
    """AgentSession says a reply through the TranscriptSynchronizer (as a room does) into a
    real-time output; a barge-in mid-word leaves the words played in the chat context."""
    from livekit.agents import Agent, AgentSession
    from livekit.agents.voice import io
    from livekit.agents.voice.transcription import TranscriptSynchronizer

    class Transcript(io.TextOutput):
        def __init__(self) -> None:
            super().__init__(label="transcript", next_in_chain=None)
            self.text = ""

        async def capture_text(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    async def run():
        tts = make_tts(piper_server, voice="joe", sample_rate=PIPER_RATE)
        session = AgentSession(tts=tts, use_tts_aligned_transcript=True)
        speaker = make_speaker()
        sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=Transcript())
        session.output.audio = sync.audio_output
        session.output.transcription = sync.text_output
        await session.start(Agent(instructions="Help with orders."))
        handle = session.say(REPLY)
        while not speaker.words or speaker.words[-1].end_time < 3.0:
            await asyncio.sleep(0.01)
        inside = [w for w in speaker.words if 1.0 < w.start_time and w.end_time < 3.0]
        cut = max(inside, key=lambda w: w.end_time - w.start_time)
        while speaker.played() < (cut.start_time + cut.end_time) / 2:
            await asyncio.sleep(0.005)
        # The caller barges in here; the device stops playing at once (the session's own
        # reading of the position comes a few event-loop hops later, at clear_buffer).
        speaker.stopped_at = time.time()
        played = speaker.played()
        handle.interrupt()
        await handle
        words = [
            {"end_ms": w.end_time * 1000, "text_end": len("".join(speaker.words[: i + 1]))}
            for i, w in enumerate(speaker.words)
        ]
        messages = [m for m in session.history.items if getattr(m, "role", None) == "assistant"]
        await session.aclose()
        await tts.aclose()
        return played, cut, words, messages

    played, cut, words, messages = asyncio.run(asyncio.wait_for(run(), 90))
    assert cut.start_time < played < cut.end_time
    heard = heard_text(REPLY, words, played * 1000).strip()
    assert heard and len(heard) < len(REPLY) / 2
    (message,) = messages
    assert message.interrupted
    assert message.text_content == heard

"""OpenAI's server-sent events: the framing alone, then the route with the fake engine."""

from __future__ import annotations

import base64
import json

import numpy as np

from tests.fakes import FakeEngine
from voxline.audio import float_to_int16
from voxline.server.framing import SseEvents, usage_for
from voxline.synthesis.words import WordMark
from voxline.tape import Part


def parse(body: bytes) -> list[dict]:
    """Events as an SSE reader sees them: blank-line separated, `data: ` lines."""
    assert body.endswith(b"\n\n")
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        (line,) = block.split("\n")
        assert line.startswith("data: ")
        events.append(json.loads(line[6:]))
    return events


def test_each_part_with_audio_is_one_delta_then_done_with_usage():
    framing = SseEvents(usage_for("Hello."))
    parts = [Part(b"\x01\x02", 0.1), Part(b"", 0.1), Part(b"\x03", 0.2)]
    events = parse(b"".join(framing.part(p) for p in parts) + framing.end())
    assert events == [
        {"type": "speech.audio.delta", "audio": base64.b64encode(b"\x01\x02").decode()},
        {"type": "speech.audio.delta", "audio": base64.b64encode(b"\x03").decode()},
        {
            "type": "speech.audio.done",
            "usage": {"input_tokens": 6, "output_tokens": 0, "total_tokens": 6},
        },
    ]


def test_words_are_events_only_when_asked():
    word = WordMark("Hello", 0.0, 310.0, 0, 5)
    part = Part(b"\x01\x02", 0.4, (word,))
    plain = parse(SseEvents(usage_for("Hello."), timestamps=False).part(part))
    assert [e["type"] for e in plain] == ["speech.audio.delta"]
    timed = parse(SseEvents(usage_for("Hello."), timestamps=True).part(part))
    assert timed[1] == {"type": "speech.words", "words": [
        {"word": "Hello", "start_ms": 0.0, "end_ms": 310.0, "text_start": 0, "text_end": 5}]}


def test_speech_route_streams_events_of_the_requested_format(make_app):
    engine = FakeEngine()
    client = make_app(engine).test_client()
    response = client.post(
        "/v1/audio/speech",
        json={
            "model": "gpt-4o-mini-tts",
            "voice": "ash",
            "input": "Hello there.",
            "response_format": "pcm",
            "stream_format": "sse",
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Content-Length" not in response.headers
    events = parse(response.data)
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    expected = float_to_int16(engine.expected(engine.builtin_voices()["alice"])).tobytes()
    assert audio == expected
    same = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "ash", "input": "Hello there.", "response_format": "pcm"},
    )
    assert same.data == expected  # the cached render also goes out as plain audio
    again = client.post(
        "/v1/audio/speech",
        json={
            "model": "gpt-4o-mini-tts",
            "voice": "ash",
            "input": "Hello there.",
            "response_format": "pcm",
            "stream_format": "sse",
        },
    )
    assert again.headers["X-Voxline-Cache"] == "hit"
    assert b"".join(base64.b64decode(e["audio"]) for e in parse(again.data)[:-1]) == expected
    assert np.frombuffer(audio, "<i2").size == engine.n_chunks * engine.chunk_len

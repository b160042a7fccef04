"""OpenAI's server-sent events: the framing alone, then the route with the fake engine."""

from __future__ import annotations

import base64
import json

import numpy as np

from tests.fakes import FakeEngine
from voxline.audio import float_to_int16
from voxline.server.sse import sse_events, usage_for


def parse(body: bytes) -> list[dict]:
    """Events as an SSE reader sees them: blank-line separated, `data: ` lines."""
    assert body.endswith(b"\n\n")
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        (line,) = block.split("\n")
        assert line.startswith("data: ")
        events.append(json.loads(line[6:]))
    return events


def test_each_chunk_is_one_delta_then_done_with_usage():
    closed = []

    def chunks():
        try:
            yield from [b"\x01\x02", b"", b"\x03"]
        finally:
            closed.append(True)

    events = parse(b"".join(sse_events(chunks(), usage_for("Hello."))))
    assert events == [
        {"type": "speech.audio.delta", "audio": base64.b64encode(b"\x01\x02").decode()},
        {"type": "speech.audio.delta", "audio": base64.b64encode(b"\x03").decode()},
        {
            "type": "speech.audio.done",
            "usage": {"input_tokens": 6, "output_tokens": 0, "total_tokens": 6},
        },
    ]
    assert closed == [True]


def test_closing_early_closes_the_audio_source():
    closed = []

    def chunks():
        try:
            yield from [b"a", b"b", b"c"]
        finally:
            closed.append(True)

    events = sse_events(chunks(), usage_for("x"))
    next(events)
    events.close()
    assert closed == [True]


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

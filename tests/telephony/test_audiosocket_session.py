"""The AudioSocket control API driving a realtime session on a real Voxline app (fake engine,
served over real websockets): token deltas in, paced 8 kHz frames out, barge-in by cancel."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_audiosocket_unit import api, connect

from telephony.audiosocket.protocol import FRAME_BYTES, KIND_SLIN, read_frame
from telephony.audiosocket.service import AudioSocketService
from telephony.voxagi.config import Settings
from tests.fakes import FakeEngine
from tests.realtime.conftest import Server
from voxline.audio import AudioPipeline, resolve_output


@pytest.fixture
def voxline(make_app):
    servers = []

    def start(engine):
        servers.append(Server(make_app(engine)))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def service_for():
    services = []

    def start(server):
        settings = Settings(url=f"http://127.0.0.1:{server.port}")
        svc = AudioSocketService(settings, ("127.0.0.1", 0), ("127.0.0.1", 0))
        svc.start()
        services.append(svc)
        return svc

    yield start
    for svc in services:
        svc.stop()


def events(service, call_id, since=0, wait=5.0):
    status, body = api(service, "GET", f"/calls/{call_id}/events?since={since}&wait={wait}")
    assert status == 200
    return body["events"]


def wait_event(service, call_id, kind, timeout=10.0):
    deadline, since = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        for event in events(service, call_id, since, 1.0):
            since = event["seq"]
            if event["type"] == kind:
                return event
    raise AssertionError(f"no {kind} event")


def session_audio_at_8k(engine, segments: int) -> bytes:
    """What the server sends for the context: one continuous pcm stream at 8 kHz."""
    spec = resolve_output("pcm", 8000, engine.sample_rate, "pcm")
    with AudioPipeline(spec, engine.sample_rate) as pipeline:
        chunks = [
            engine._chunk(i, {"offset": np.array([0.0])})
            for _ in range(segments)
            for i in range(engine.n_chunks)
        ]
        return b"".join(pipeline.feed(c) for c in chunks) + pipeline.finish()


def test_token_deltas_speak_on_the_call_with_segment_events(voxline, service_for):
    engine = FakeEngine(n_chunks=10, chunk_len=480)
    service = service_for(voxline(engine))
    sock, call_id = connect(service)
    try:
        for token in ["Hello", " there.", " Bye"]:
            body = {"type": "input_text.append", "text": token}
            assert api(service, "POST", f"/calls/{call_id}/session", body) == (
                202,
                {"sent": "input_text.append"},
            )
        api(service, "POST", f"/calls/{call_id}/session", {"type": "input_text.end"})
        audio = bytearray()
        start = time.monotonic()
        while time.monotonic() - start < 1.2:
            frame = read_frame(sock)
            assert frame.kind == KIND_SLIN and len(frame.payload) == FRAME_BYTES
            audio += frame.payload
        assert session_audio_at_8k(engine, 2) in bytes(audio)
        seen = events(service, call_id)
        segments = [e["text"] for e in seen if e["type"] == "speech.segment"]
        assert segments == ["Hello there.", "Bye"]
        done = [e for e in seen if e["type"] == "speech.audio.done"]
        assert done and done[0]["context_id"] == "default" and done[0]["audio_ms"] == 400
    finally:
        sock.close()


def test_cancel_silences_the_call_at_once_and_reports_what_was_heard(voxline, service_for):
    engine = FakeEngine(n_chunks=500, chunk_len=480)  # 10 s a segment
    service = service_for(voxline(engine))
    sock, call_id = connect(service)
    try:
        path = f"/calls/{call_id}/session"
        api(
            service,
            "POST",
            path,
            {"type": "input_text.append", "text": "A long one", "context_id": "turn-1"},
        )
        api(service, "POST", path, {"type": "input_text.flush", "context_id": "turn-1"})
        wait_event(service, call_id, "speaking")
        for _ in range(500):  # the silence sent before speech started is still on the socket
            if read_frame(sock).payload != bytes(FRAME_BYTES):
                break
        for _ in range(10):
            assert read_frame(sock).payload != bytes(FRAME_BYTES)  # speech is playing
        cancel = {"type": "context.cancel", "context_id": "turn-1"}
        status, answer = api(service, "POST", path, cancel)
        assert status == 202 and answer["sent"] == "context.cancel"
        # Every speech frame sent is counted in played_ms: 11 were read above, the rest are
        # still on the socket (sent while this test was busy); silence follows at once.
        unread = int(answer["played_ms"]) // 20 - 11
        assert unread >= 0
        frames = [read_frame(sock).payload for _ in range(unread + 15)]
        assert all(f != bytes(FRAME_BYTES) for f in frames[:unread])
        assert all(f == bytes(FRAME_BYTES) for f in frames[unread:])
        ack = wait_event(service, call_id, "context.cancelled")
        assert ack["context_id"] == "turn-1" and ack["segments"][0]["text"] == "A long one"
        # The fake engine is instant: the server had sent it all; the caller heard ~10 frames.
        assert ack["audio_ms"] == 10000
        assert 200 <= ack["played_ms"] <= 1000
        # The answer to the cancel is that event, with the words that had ended by then.
        assert answer == {"sent": "context.cancel", **without_meta(ack)}
        assert all(w["end_ms"] <= ack["played_ms"] for w in answer["words"])
        assert "A long one".startswith(answer["heard_text"])
        assert api(service, "POST", path, {"type": "speak"})[1]["error"] == "bad_message"
    finally:
        sock.close()


def without_meta(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("seq", "time", "type")}


def test_cancel_answers_the_words_the_caller_heard(voxline, service_for):
    engine = FakeEngine(n_chunks=500, chunk_len=480)  # 10 s a segment, ~1 s a word
    service = service_for(voxline(engine))
    sock, call_id = connect(service)
    text = "one two three four five six seven eight nine ten"
    try:
        path = f"/calls/{call_id}/session"
        api(service, "POST", path, {"type": "input_text.append", "text": text})
        api(service, "POST", path, {"type": "input_text.flush"})
        wait_event(service, call_id, "speaking")
        for _ in range(500):
            if read_frame(sock).payload != bytes(FRAME_BYTES):
                break
        for _ in range(125):  # 2.5 s of speech
            read_frame(sock)
        status, answer = api(service, "POST", path, {"type": "context.cancel"})
        assert status == 202 and answer["audio_ms"] == 10000
        assert 2400 <= answer["played_ms"] <= 3200
        words = answer["words"]
        assert words and all(w["end_ms"] <= answer["played_ms"] for w in words)
        assert answer["heard_text"] == text[: words[-1]["text_end"]]
        assert text.startswith(answer["heard_text"]) and answer["heard_text"] != text
        assert answer == {
            "sent": "context.cancel",
            **without_meta(wait_event(service, call_id, "context.cancelled")),
        }
    finally:
        sock.close()

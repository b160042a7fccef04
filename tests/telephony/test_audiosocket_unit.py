"""The AudioSocket service driven by a fake Asterisk: framing, pacing, events and the API."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid

import pytest
from stub_tts import tone_pcm

from telephony.audiosocket.protocol import (
    FRAME_BYTES,
    KIND_DTMF,
    KIND_HANGUP,
    KIND_SLIN,
    KIND_UUID,
    ProtocolError,
    encode,
    read_frame,
)
from telephony.audiosocket.service import AudioSocketService
from telephony.voxagi.config import Settings


@pytest.fixture
def service(stub):
    svc = AudioSocketService(Settings(url=stub.url), ("127.0.0.1", 0), ("127.0.0.1", 0))
    svc.start()
    yield svc
    svc.stop()


def api(service, method: str, path: str, body: object = None) -> tuple[int, dict]:
    """Call the control API."""
    url = "http://{}:{}{}".format(*service.control_address, path)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def connect(service) -> tuple[socket.socket, str]:
    """Play Asterisk: connect and send the UUID frame."""
    call_id = uuid.uuid4()
    sock = socket.create_connection(service.audio_address)
    sock.sendall(encode(KIND_UUID, call_id.bytes))
    deadline = time.monotonic() + 5
    while service.registry.get(str(call_id)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return sock, str(call_id)


def test_frames_are_320_bytes_every_20_ms_silence_then_speech(service, stub):
    sock, call_id = connect(service)
    try:
        frames = [read_frame(sock) for _ in range(10)]
        assert all(f.kind == KIND_SLIN and f.payload == bytes(FRAME_BYTES) for f in frames)
        status, body = api(service, "POST", f"/calls/{call_id}/say", {"text": "Hi there."})
        assert status == 202 and body == {"utterance": 1}
        start, audio, times = time.monotonic(), bytearray(), []
        while time.monotonic() - start < 1.5:
            frame = read_frame(sock)
            assert frame.kind == KIND_SLIN and len(frame.payload) == FRAME_BYTES
            audio += frame.payload
            times.append(time.monotonic())
        # Frames sent during the say request arrive at once: time the pace after 0.3 s.
        paced = [t for t in times if t - start >= 0.3]
        rate = (len(paced) - 1) / (paced[-1] - paced[0])
        assert 45 < rate < 55  # real time: 50 frames a second
        expected = b"".join(s.to_bytes(2, "little", signed=True) for s in tone_pcm("Hi there."))
        assert expected in bytes(audio)
        assert stub.requests[0]["format"] == "pcm"
    finally:
        sock.close()


def test_dtmf_and_hangup_become_events_and_the_call_is_freed(service):
    sock, call_id = connect(service)
    try:
        sock.sendall(encode(KIND_DTMF, b"9"))
        status, body = api(service, "GET", f"/calls/{call_id}/events?since=0&wait=5")
        assert status == 200
        assert [(e["type"], e.get("digit")) for e in body["events"]] == [("dtmf", "9")]
        sock.sendall(encode(KIND_HANGUP))
        deadline = time.monotonic() + 3
        while api(service, "GET", f"/calls/{call_id}")[0] != 404:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert api(service, "GET", "/calls") == (200, {"calls": []})
    finally:
        sock.close()


def test_api_hangup_sends_a_hangup_frame(service):
    sock, call_id = connect(service)
    try:
        assert api(service, "POST", f"/calls/{call_id}/hangup")[0] == 202
        kinds = set()
        while KIND_HANGUP not in kinds:
            frame = read_frame(sock)
            assert frame is not None
            kinds.add(frame.kind)
    finally:
        sock.close()


def test_api_errors_are_json(service):
    missing = str(uuid.uuid4())
    assert api(service, "GET", f"/calls/{missing}")[1]["error"] == "no_such_call"
    assert api(service, "GET", "/nope")[0] == 404
    sock, call_id = connect(service)
    try:
        assert api(service, "POST", f"/calls/{call_id}/say", {"text": ""})[1]["error"] == (
            "missing_text"
        )
        assert api(service, "POST", f"/calls/{call_id}/say", [1])[0] == 400
        assert api(service, "GET", f"/calls/{call_id}/say")[0] == 405
        status, body = api(service, "GET", f"/calls/{call_id}/events?wait=x")
        assert (status, body["error"]) == (400, "bad_parameter")
        assert api(service, "GET", "/health") == (200, {"status": "ok", "calls": 1})
    finally:
        sock.close()


def test_a_truncated_frame_is_a_protocol_error():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(bytes([KIND_SLIN, 0x01, 0x40]) + b"\0" * 10)
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError):
            read_frame(b)

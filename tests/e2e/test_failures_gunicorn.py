"""Failure semantics and hostile traffic through a real gunicorn process (fake engine injected
through the app factory: `tests.fakes:create_app()`)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time

import pytest
import requests

from voxline_client import VoxlineClient, VoxlineError

SPEAK = {"text": "Thank you for calling.", "format": "pcm", "cache": False}
FAKE = "tests.fakes:create_app()"


def metric(url: str, name: str, **labels: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    selector = r"\{" + re.escape(want) + r"\}" if labels else ""
    pattern = "^" + re.escape(name) + selector + r" (\S+)"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def failing(module_server, tmp_path_factory):
    """A server whose engine fails after its first chunk of every sentence."""
    return module_server(FAKE, FAKE_FAIL_AFTER="1", VOXLINE_WARMUP="0",
                         VOXLINE_SPEAKERS_DIR=str(tmp_path_factory.mktemp("speakers")))


def test_mid_stream_failure_is_an_error_for_http_client(failing):
    conn = http.client.HTTPConnection("127.0.0.1", failing.port, timeout=30)
    conn.request("POST", "/tts_stream", json.dumps(SPEAK), {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    conn.close()
    assert len(caught.value.partial) == 2 * 8000  # the chunk made before the failure


def test_mid_stream_failure_is_an_error_for_requests(failing):
    with requests.post(failing.url + "/tts_stream", json=SPEAK, stream=True, timeout=30) as r:
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(r.iter_content(None))
    assert metric(failing.url, "voxline_stream_failures_total", stage="synthesis") >= 1


def test_mid_stream_failure_is_an_error_for_voxline_client(failing):
    client = VoxlineClient(failing.url, timeout=30)
    with pytest.raises(VoxlineError), client.stream("Thank you for calling.", cache=False) as audio:
        audio.read_all()


def test_failure_before_audio_is_a_status_with_json(spawn_server):
    server = spawn_server(FAKE, FAKE_FAIL_AFTER="0", VOXLINE_WARMUP="0")
    for route in ("/tts_stream", "/tts"):
        response = requests.post(server.url + route, json=SPEAK, timeout=30)
        assert response.status_code == 500
        assert response.json()["error"] == "synthesis_failed"
    openai = requests.post(server.url + "/v1/audio/speech", timeout=30, json={
        "model": "tts-1", "voice": "alloy", "input": "Hello.", "cache": False})
    assert openai.status_code == 500 and openai.json()["error"]["code"] == "synthesis_failed"


HOSTILE_BODIES = [
    # (description, raw body, status, error code)
    ("lone surrogate", b'{"text": "\\ud800 hello"}', 400, "invalid_encoding"),
    ("lone surrogate in a key", b'{"text": "hi", "\\udfff": 1}', 400, "invalid_encoding"),
    ("deep nesting", b'{"text": "hi", "_x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     400, "invalid_json"),
    ("huge number as float", b'{"text": "hi", "speed": 1e999}', 400, "invalid_json"),
    ("NaN literal", b'{"text": "hi", "temperature": NaN}', 400, "invalid_json"),
    ("huge integer", b'{"text": "hi", "sample_rate": 1' + b"0" * 5000 + b"}",
     400, "invalid_json"),
    ("body too large", b'{"text": "' + b"a" * 5_000_000 + b'"}', 413, "body_too_large"),
]


@pytest.mark.parametrize("case", HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
def test_hostile_bodies_get_json_4xx_and_the_server_keeps_serving(spawn_server_once, case):
    _, raw, status, code = case
    url = spawn_server_once.url
    openai = raw.replace(b'{"text": ', b'{"model": "tts-1", "voice": "alloy", "input": ', 1)
    for route, data in (("/tts_stream", raw), ("/v1/audio/speech", openai)):
        response = requests.post(url + route, data=data, timeout=30,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == status, response.text
        body = response.json()
        assert (body["error"]["code"] if route.startswith("/v1") else body["error"]) == code
    assert requests.post(url + "/tts_stream", json=SPEAK, timeout=30).status_code == 200


@pytest.fixture(scope="module")
def spawn_server_once(module_server, tmp_path_factory):
    return module_server(FAKE, VOXLINE_SPEAKERS_DIR=str(tmp_path_factory.mktemp("speakers")))


def stalled_reader(port: int, body: dict) -> socket.socket:
    """Send a request and never read: a tiny receive window, nothing taken."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    data = json.dumps(body).encode()
    sock.sendall(b"POST /tts_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def timed_read(url: str, body: dict) -> tuple[float, int]:
    started = time.perf_counter()
    with requests.post(url + "/tts_stream", json=body, stream=True, timeout=60) as r:
        assert r.status_code == 200
        size = sum(len(part) for part in r.iter_content(None))
    return time.perf_counter() - started, size


def test_a_follower_completes_at_full_speed_while_its_leader_never_reads(spawn_server):
    # 60 s of audio made in about 1.5 s: a follower must not wait for its leader's socket.
    server = spawn_server(FAKE, FAKE_CHUNKS="60", FAKE_CHUNK_LEN="24000", FAKE_DELAY_S="0.025")
    alone_s, alone_size = timed_read(server.url, {**SPEAK, "text": "Alone."})
    cached = {**SPEAK, "cache": True, "text": "Shared by two."}
    leader = stalled_reader(server.port, cached)
    time.sleep(0.3)  # the leader's render is under way
    shared_s, shared_size = timed_read(server.url, cached)
    leader.close()
    assert shared_size == alone_size == 60 * 24000 * 2
    assert shared_s < 2 * alone_s + 0.5, (shared_s, alone_s)


def test_a_client_that_takes_nothing_loses_its_stream_while_others_proceed(spawn_server):
    server = spawn_server(FAKE, FAKE_CHUNKS="100000", FAKE_CHUNK_LEN="2400",
                          VOXLINE_WRITE_TIMEOUT_S="2", VOXLINE_MAX_AHEAD_S="1")
    stalled = stalled_reader(server.port, SPEAK)
    try:
        short = {**SPEAK, "text": "Meanwhile."}
        deadline = time.monotonic() + 30
        cancelled = 0.0
        while time.monotonic() < deadline and not cancelled:
            # Another client is served normally while the stalled stream is paused.
            with requests.post(server.url + "/tts_stream", json=short, stream=True,
                               timeout=10) as r:
                assert r.status_code == 200
                assert len(next(r.iter_content(96_000))) > 0
            cancelled = metric(server.url, "voxline_stream_failures_total",
                               stage="write_timeout")
            time.sleep(0.5)
        assert cancelled == 1
        assert metric(server.url, "voxline_active_streams") == 0
    finally:
        stalled.close()

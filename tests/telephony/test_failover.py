"""Several TTS servers in `url`: the next one is tried on a refused connection, a 503 or a
first-byte timeout, never once audio has started (AGI, FastAGI and AudioSocket paths)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_asterisk import FakeAsterisk
from stub_tts import tone_pcm, tone_ulaw

from telephony.audiosocket.protocol import KIND_SLIN, KIND_UUID, encode, read_frame
from telephony.audiosocket.service import AudioSocketService
from telephony.voxagi.cache import EXTENSION
from telephony.voxagi.client import Cancelled, TtsError, TtsRequest, build_query
from telephony.voxagi.config import ConfigError, Settings
from telephony.voxagi.speak import run_call

ROOT = Path(__file__).resolve().parents[2]


def dead_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def fetch(url: str, text: str = "Hello there.", first_byte_timeout: float = 5.0) -> bytes:
    query = build_query(text, "", "en", "", "ulaw", 8000)
    return b"".join(TtsRequest(url, query, 1.0, first_byte_timeout, 10.0).chunks())


@pytest.mark.parametrize("first_mode", ["dead", "error", "slow"])
def test_next_server_after_refusal_503_or_first_byte_timeout(stub, second, first_mode):
    """`error` answers 503 (queue full), `slow` sends nothing within the first-byte timeout."""
    stub.mode = "ok" if first_mode == "dead" else first_mode
    first = dead_url() if first_mode == "dead" else stub.url
    start = time.monotonic()
    audio = fetch(f"{first}, {second.url}", first_byte_timeout=0.5)
    assert audio == tone_ulaw("Hello there.")
    assert len(second.requests) == 1
    assert len(stub.requests) == (0 if first_mode == "dead" else 1)
    assert time.monotonic() - start < 3


def test_no_failover_once_audio_has_started(stub, second):
    def half_then_close(handler) -> None:
        body = tone_ulaw("Hello there.")
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/basic")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)

    stub.handle = half_then_close
    with pytest.raises(TtsError) as info:
        fetch(f"{stub.url},{second.url}")
    assert info.value.reason == "broken_stream"
    assert second.requests == []  # the caller heard part of it: no second voice mid-prompt


def test_other_errors_are_not_retried_and_the_last_error_is_reported(stub, second):
    stub.mode = "bad_type"
    with pytest.raises(TtsError) as info:
        fetch(f"{stub.url},{second.url}")
    assert info.value.reason == "bad_audio" and second.requests == []
    with pytest.raises(TtsError) as info:
        fetch(f"{dead_url()},{dead_url()}")
    assert info.value.reason == "unreachable"


def test_every_url_in_the_list_is_checked():
    assert Settings(url="http://a:1, https://b:2").urls() == ["http://a:1", "https://b:2"]
    with pytest.raises(ConfigError, match="ftp://b"):
        Settings(url="http://a:1,ftp://b")
    with pytest.raises(ConfigError):
        Settings(url=" , ")


def test_agi_plays_the_prompt_when_the_first_server_is_dead(stub, tmp_path):
    settings = Settings(url=f"{dead_url()},{stub.url}", cache_dir=str(tmp_path))
    fake = FakeAsterisk()
    try:
        outcome = run_call(fake.channel(), settings, "Hello there.", {})
    finally:
        fake.close()
    assert outcome.status == "OK", outcome
    (played,) = fake.played()
    assert Path(played + EXTENSION).read_bytes() == tone_ulaw("Hello there.")


def test_fastagi_plays_the_prompt_when_the_first_server_is_dead(stub, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "VOXLINE_TTS_URL": f"{dead_url()},{stub.url}",
        "VOXLINE_TTS_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "telephony.fastagi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        with sock, sock.makefile("rb") as reader:
            sock.sendall(b"agi_network: yes\nagi_network_script: say\nagi_arg_1: Hello there.\n\n")
            played, variables = [], {}
            for raw in reader:
                line = raw.decode().strip()
                if line.startswith("STREAM FILE"):
                    played.append(line.split()[2].strip('"'))
                    sock.sendall(b"200 result=0 endpos=4000\n")
                elif line.startswith("SET VARIABLE"):
                    name, value = line.split(" ", 3)[2:]
                    variables[name.strip('"')] = value.strip('"')
                    sock.sendall(b"200 result=1\n")
                else:
                    sock.sendall(b"200 result=0\n")
        assert variables["VOXLINE_STATUS"] == "OK"
        assert Path(played[0] + EXTENSION).read_bytes() == tone_ulaw("Hello there.")
    finally:
        proc.terminate()
        proc.wait(10)


def test_audiosocket_speaks_when_the_first_server_is_dead(stub):
    import json
    import urllib.request
    import uuid

    settings = Settings(url=f"{dead_url()},{stub.url}")
    service = AudioSocketService(settings, ("127.0.0.1", 0), ("127.0.0.1", 0))
    service.start()
    call_id = uuid.uuid4()
    sock = socket.create_connection(service.audio_address)
    try:
        sock.sendall(encode(KIND_UUID, call_id.bytes))
        deadline = time.monotonic() + 5
        while service.registry.get(str(call_id)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        url = "http://{}:{}/calls/{}/say".format(*service.control_address, call_id)
        request = urllib.request.Request(
            url, json.dumps({"text": "Hi there."}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
        audio, start = bytearray(), time.monotonic()
        while time.monotonic() - start < 1.5:
            frame = read_frame(sock)
            assert frame.kind == KIND_SLIN
            audio += frame.payload
        expected = b"".join(s.to_bytes(2, "little", signed=True) for s in tone_pcm("Hi there."))
        assert expected in bytes(audio)
    finally:
        sock.close()
        service.stop()


def closing_reply(handler, body: bytes, stall_s: float = 0.0) -> None:
    """Answer with `Connection: close` and no length (the body ends with the connection),
    then send nothing more for `stall_s`."""
    handler.send_response(200)
    handler.send_header("Content-Type", "audio/basic")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()
    time.sleep(stall_s)
    handler.close_connection = True


def test_a_reply_that_closes_its_connection_still_streams(stub):
    """`Connection: close` (a draining gunicorn, an HTTP/1.0 proxy): http.client drops its
    socket at the reply, but the body must still stream under the client's own timeouts."""
    stub.handle = lambda handler: closing_reply(handler, tone_ulaw("Hello there."))
    assert fetch(stub.url) == tone_ulaw("Hello there.")


def test_abort_unblocks_a_reply_that_closes_its_connection(stub):
    """A hang-up (abort from another thread) ends a stalled read after a closing reply too:
    the socket to shut is the one the reply reads, which http.client no longer holds."""
    half = tone_ulaw("Hello there.")[:800]
    # Then nothing for 10 s, the request's whole timeout: only the abort can end it sooner.
    stub.handle = lambda handler: closing_reply(handler, half, stall_s=10)
    query = build_query("Hello there.", "", "en", "", "ulaw", 8000)
    request = TtsRequest(stub.url, query, 1.0, 5.0, 10.0)
    chunks = request.chunks()
    assert next(chunks)
    threading.Timer(0.2, request.abort).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        list(chunks)
    assert time.monotonic() - started < 5  # not the 10 s timeout

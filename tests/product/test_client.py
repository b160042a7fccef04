"""The Python client against scripted HTTP servers: retries on 503 (honouring Retry-After) and
on connection errors, no retry on client errors, timeouts, WAV files with exact sizes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, free_port
from voxline_client import (
    VoxlineClient,
    VoxlineConnectionError,
    VoxlineError,
    VoxlineHTTPError,
)
from voxline_client.client import write_stream

WAV_HEADER = (
    struct.pack("<4sI4s", b"RIFF", 0xFFFFFFFF, b"WAVE")
    + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 24000, 48000, 2, 16)
    + struct.pack("<4sI", b"data", 0xFFFFFFFF)
)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out and left is expected here


class Script:
    """A server answering each request with the next scripted (status, headers, body)."""

    def __init__(
        self, replies: list[tuple[int, dict, bytes]], delay: float = 0.0, port: int = 0
    ) -> None:
        self.replies = list(replies)
        self.delay = delay
        self.seen: list[tuple[float, str, dict]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                script.seen.append((time.monotonic(), self.path, dict(self.headers), body))
                status, headers, payload = script.replies.pop(0)
                time.sleep(script.delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

            def log_message(self, *args) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Script:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


BUSY = (
    503,
    {"Retry-After": "1", "Content-Type": "application/json"},
    json.dumps({"error": "queue_full", "message": "the synthesis queue is full"}).encode(),
)
AUDIO = (
    200,
    {
        "Content-Type": "audio/pcm; rate=24000; channels=1",
        "X-Sample-Rate": "24000",
        "X-Voxline-Cache": "miss",
        "X-Request-Id": "r1",
    },
    b"\x01\x00" * 4800,
)


def test_retries_a_busy_server_after_retry_after():
    with Script([BUSY, AUDIO]) as server:
        client = VoxlineClient(server.url, api_key="secret-key-1")
        with client.stream("Hello.", voice="anna", seed=3) as audio:
            data = audio.read_all()
        assert data == AUDIO[2]
        assert (audio.sample_rate, audio.cache, audio.request_id) == (24000, "miss", "r1")
        (t1, path, headers, body), (t2, *_) = server.seen
        assert t2 - t1 >= 0.95  # waited as told
        assert path == "/tts_stream"
        assert headers["Authorization"] == "Bearer secret-key-1"
        assert body == {"text": "Hello.", "format": "pcm", "speaker": "anna", "seed": 3}


class FakeTime:
    """A clock that moves only when the client sleeps, recording each wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_retries_a_busy_server_until_the_deadline():
    fake = FakeTime()
    with Script([BUSY] * 5) as server:
        client = VoxlineClient(server.url, deadline=2.5, sleep=fake.sleep, clock=fake.clock)
        with pytest.raises(VoxlineHTTPError) as caught:
            client.synthesize("Hello.")
        assert len(server.seen) == 3  # at 0, 1 and 2 s; a try at 3 s would pass the deadline
    assert caught.value.status == 503 and caught.value.code == "queue_full"
    assert caught.value.attempts == 3 and caught.value.retry_after == 1
    assert fake.waits == [1.0, 1.0]


def test_a_long_retry_after_is_waited_for_within_the_deadline():
    busy = (503, {**BUSY[1], "Retry-After": "7"}, BUSY[2])
    fake = FakeTime()
    with Script([busy, busy, AUDIO]) as server:
        client = VoxlineClient(
            server.url, deadline=20, max_wait=30, sleep=fake.sleep, clock=fake.clock
        )
        assert client.synthesize("Hello.") == AUDIO[2]
    assert fake.waits == [7.0, 7.0]  # not a fixed count of retries: the deadline decides


def test_client_errors_are_not_retried():
    bad = (
        400,
        {"Content-Type": "application/json"},
        json.dumps({"error": "missing_text", "message": "text is required"}).encode(),
    )
    with Script([bad, AUDIO]) as server:
        with pytest.raises(VoxlineHTTPError) as caught:
            VoxlineClient(server.url).synthesize("")
        assert len(server.seen) == 1
    assert (caught.value.status, caught.value.code) == (400, "missing_text")


def test_openai_error_shape_is_understood():
    bad = (
        401,
        {},
        json.dumps(
            {
                "error": {
                    "message": "no key",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "missing_api_key",
                }
            }
        ).encode(),
    )
    with Script([bad]) as server, pytest.raises(VoxlineHTTPError) as caught:
        VoxlineClient(server.url).synthesize("Hi.")
    assert (caught.value.code, caught.value.message) == ("missing_api_key", "no key")


def test_connection_errors_back_off_then_fail_at_the_deadline():
    fake = FakeTime()
    client = VoxlineClient(
        f"http://127.0.0.1:{free_port()}",
        deadline=2.0,
        backoff=0.25,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    with pytest.raises(VoxlineConnectionError) as caught:
        client.synthesize("Hello.")
    assert caught.value.attempts == 4  # at 0, 0.25, 0.75 and 1.75 s; the next at 3.75
    assert fake.waits == [0.25, 0.5, 1.0]
    assert "2 s deadline" in str(caught.value)


def test_a_server_that_comes_up_is_reached():
    port = free_port()  # refused until the server starts, 0.4 s later
    started: list[Script] = []
    timer = threading.Timer(0.4, lambda: started.append(Script([AUDIO], port=port).__enter__()))
    timer.start()
    try:
        data = VoxlineClient(f"http://127.0.0.1:{port}", deadline=5, backoff=0.1).synthesize("x")
        assert data == AUDIO[2]
    finally:
        timer.join()
        for server in started:
            server.__exit__()


def test_a_stalled_server_times_out():
    with Script([AUDIO], delay=2.0) as server:
        client = VoxlineClient(server.url, timeout=0.3, deadline=0.5)
        started = time.monotonic()
        with pytest.raises(VoxlineError):
            client.synthesize("Hello.")
        assert time.monotonic() - started < 1.5


def test_save_fixes_the_streamed_wav_sizes(tmp_path):
    reply = (200, {"Content-Type": "audio/wav"}, WAV_HEADER + b"\x00\x01" * 2400)
    with Script([reply]) as server:
        path = VoxlineClient(server.url).save("Hello.", tmp_path / "hello.wav")
        assert server.seen[0][3]["format"] == "wav"
    import wave

    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 2400 and wav.getframerate() == 24000


def test_write_stream_leaves_pipes_alone(tmp_path):
    class Chunks:
        def __iter__(self):
            yield WAV_HEADER
            yield b"\x00" * 10

    out = (tmp_path / "raw").open("wb")  # not readable: treated like a pipe
    assert write_stream(Chunks(), out, "wav") == 54
    out.close()
    assert (tmp_path / "raw").read_bytes()[4:8] == b"\xff\xff\xff\xff"


def test_client_imports_no_torch_or_numpy():
    code = (
        "import sys, voxline_client, voxline_client.cli; "
        "print(sorted(m for m in ('torch', 'numpy', 'flask', 'voxline') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_cli_say_to_a_file_and_to_stdout(tmp_path):
    reply = (
        200,
        {"Content-Type": "audio/wav", "X-Voxline-Voice": "anna", "X-Sample-Rate": "24000"},
        WAV_HEADER + b"\x00\x01" * 100,
    )
    with Script([reply, reply]) as server:
        to_file = subprocess.run(
            [
                sys.executable,
                "-m",
                "voxline_client",
                "--url",
                server.url,
                "say",
                "Hello",
                "-o",
                str(tmp_path / "hello.wav"),
                "--voice",
                "anna",
                "--no-cache",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert to_file.returncode == 0, to_file.stderr
        piped = subprocess.run(
            [
                sys.executable,
                "-m",
                "voxline_client",
                "--url",
                server.url,
                "say",
                "Hello",
                "--format",
                "wav",
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
        )
        assert piped.returncode == 0
        assert server.seen[0][3] == {
            "text": "Hello",
            "format": "wav",
            "speaker": "anna",
            "cache": False,
        }
    assert (tmp_path / "hello.wav").read_bytes()[4:8] == struct.pack("<I", 36 + 200)
    assert piped.stdout == reply[2]  # a pipe cannot seek: the streamed header stays


def test_cli_reports_errors_without_a_traceback():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voxline_client",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--deadline",
            "0.5",
            "say",
            "Hello",
            "-o",
            "/dev/null",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("voxline: no server answered within the 0.5 s deadline")

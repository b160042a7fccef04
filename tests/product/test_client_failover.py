"""voxline_client across several servers on loopback: real gunicorn (tone engine), a dead port,
a busy server, and raw sockets that stall or break off at exact protocol points.

Rule under test: before the first body byte, failures move on to the next server (or wait and
retry within the deadline); after it, nothing is retried and a broken stream raises.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, ServerProcess, free_port
from voxline_client import VoxlineClient, VoxlineHTTPError, VoxlineStreamError
from voxline_client.failover import Rotation, parse_retry_after, split_urls

TEXT = "Hello there."  # 12 characters of tone
TEXT_BYTES = 2 * round(len(TEXT) / 14 * 24000)  # pcm s16 at 24 kHz (ToneEngine's rate)
LONG = "This sentence keeps the tone engine busy for a good while. " * 6  # ~25 s of tone
LONG_BYTES = 2 * round(len(LONG) / 14 * 24000)


# Pure parts: the attempt schedule and header parsing.


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rotation_prefers_earlier_servers_and_waits_for_the_first_ready():
    clock = Clock()
    rotation = Rotation(3, 10.0, backoff=0.5, max_wait=30, clock=clock)
    assert rotation.next() == (0, 0.0)
    rotation.failed(0, None)  # ready again at +0.5
    assert rotation.next() == (1, 0.0)
    rotation.failed(1, 2.0)  # asked for 2 s
    assert rotation.next() == (2, 0.0)
    rotation.failed(2, None)
    assert rotation.next() == (0, 0.5)
    clock.now += 0.5
    rotation.failed(0, None)  # second failure: backoff doubles to 1 s
    assert rotation.next() == (2, 0.0)
    clock.now += 9.4  # 0.1 s left
    assert rotation.remaining() == pytest.approx(0.1)
    rotation.failed(2, 5.0)
    rotation.failed(1, 5.0)
    rotation.failed(0, 5.0)
    assert rotation.next() is None  # every wait reaches past the deadline


def test_rotation_caps_a_wait_at_max_wait():
    clock = Clock()
    rotation = Rotation(1, 100.0, backoff=0.5, max_wait=3.0, clock=clock)
    rotation.failed(0, 3600.0)
    assert rotation.next() == (0, 3.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("0.5", 0.5),
        (" 12 ", 12.0),
        ("-4", 0.0),
        ("nan", None),
        ("soon", None),
        (formatdate(1_000_030, usegmt=True), 30.0),
    ],
)
def test_retry_after_forms(header, seconds):
    assert parse_retry_after(header, now=1_000_000) == seconds


def test_urls_from_lists_and_commas():
    assert split_urls("http://a:1/, http://b:2") == ("http://a:1", "http://b:2")
    assert split_urls(["http://a:1", "https://b/x/"]) == ("http://a:1", "https://b/x")
    for bad in ("", " , ", "a:1", "ftp://a", []):
        with pytest.raises(ValueError):
            split_urls(bad)


# Raw servers: exact bytes, then stall or hang up.

CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: audio/pcm; rate=24000\r\n"
    b"X-Sample-Rate: 24000\r\nTransfer-Encoding: chunked\r\n\r\n"
)


class RawServer:
    """Accepts connections, reads a request, and plays `script(conn)`; counts requests."""

    def __init__(self, script) -> None:
        self.script = script
        self.requests = 0
        self.release = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536) or b"\r\n\r\n"
            self.requests += 1
            try:
                self.script(self, conn)
            except OSError:
                pass

    def hold(self) -> None:
        """Stall: keep the connection open without sending anything more."""
        self.release.wait(30)

    def close(self) -> None:
        self.release.set()
        self.sock.close()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SCRIPTS = {
    "silent": lambda srv, conn: srv.hold(),
    "headers only": lambda srv, conn: (conn.sendall(CHUNKED_200), srv.hold()),
    "abort mid-stream": lambda srv, conn: conn.sendall(CHUNKED_200 + chunk(b"\x01\x00" * 500) * 3),
    "stall mid-stream": lambda srv, conn: (
        conn.sendall(CHUNKED_200 + chunk(b"\x01\x00" * 500)),
        srv.hold(),
    ),
}
SENT_BEFORE_FAILING = {"abort mid-stream": 3000, "stall mid-stream": 1000}


@pytest.fixture
def raw():
    servers: list[RawServer] = []

    def make(kind: str) -> RawServer:
        servers.append(RawServer(SCRIPTS[kind] if kind in SCRIPTS else lambda s, c: None))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("kind", ["abort mid-stream", "stall mid-stream"])
def test_a_failure_after_the_first_byte_raises_and_is_not_retried(raw, kind):
    bad, backup = raw(kind), raw("counting backup")
    client = VoxlineClient([bad.url, backup.url], timeout=0.5, deadline=10)
    with client.stream(TEXT) as audio, pytest.raises(VoxlineStreamError) as caught:
        for _ in audio:
            pass
    assert caught.value.received == SENT_BEFORE_FAILING[kind] == audio.received
    assert (bad.requests, backup.requests) == (1, 0)


def test_a_broken_stream_leaves_no_file(raw, tmp_path):
    bad = raw("abort mid-stream")
    with pytest.raises(VoxlineStreamError):
        VoxlineClient(bad.url, deadline=5).save(TEXT, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    result = run_cli(["--url", bad.url, "say", TEXT, "-o", str(tmp_path / "cli.pcm")])
    assert result.returncode == 1 and "broke off after 3000 bytes" in result.stderr
    assert not (tmp_path / "cli.pcm").exists()


def test_an_empty_200_is_an_error_not_silence(raw):
    empty = raw("counting backup")
    empty.script = lambda srv, conn: conn.sendall(CHUNKED_200 + b"0\r\n\r\n")
    with pytest.raises(VoxlineStreamError, match="empty body"):
        VoxlineClient(empty.url, deadline=5).stream(TEXT)
    assert empty.requests == 1


# Real gunicorn servers with the tone engine.


def tone_env(tmp: Path, **extra: str) -> dict[str, str]:
    (tmp / "speakers").mkdir(exist_ok=True)
    return {
        "VOXLINE_ENGINE": "tone",
        "VOXLINE_SPEAKERS_DIR": str(tmp / "speakers"),
        "VOXLINE_CACHE_DIR": str(tmp / "cache"),
        **extra,
    }


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tone")
    server = ServerProcess(tone_env(tmp), tmp / "gunicorn.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """A server with room for one request, kept busy by a long stream for the module's tests."""
    tmp = tmp_path_factory.mktemp("busy")
    env = tone_env(tmp, VOXLINE_MAX_ACTIVE="1", VOXLINE_MAX_QUEUE="0")
    server = ServerProcess(env, tmp / "gunicorn.log").start()
    holder = requests.post(
        server.url + "/tts_stream", json={"text": LONG, "cache": False}, stream=True, timeout=60
    )
    chunks = holder.iter_content(1)  # kept: a dropped generator would close the stream
    next(chunks)
    yield server
    chunks.close()
    holder.close()
    server.stop()


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxline_client", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def pcm(audio) -> bytes:
    with audio:
        return audio.read_all()


@pytest.mark.slow
def test_a_dead_first_server_fails_over_at_once(tone):
    dead = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []  # the client's own sleeps (a wall-clock bound flakes under load)
    audio = VoxlineClient([dead, tone.url], deadline=10, sleep=waits.append).stream(
        TEXT, cache=False)
    assert len(pcm(audio)) == TEXT_BYTES and audio.url == tone.url
    assert waits == []  # no backoff before trying the next server


@pytest.mark.slow
def test_a_busy_server_is_skipped_for_the_next(busy, tone):
    direct = requests.post(busy.url + "/tts_stream", json={"text": TEXT}, timeout=10)
    assert direct.status_code == 503 and int(direct.headers["Retry-After"]) >= 1
    waits: list[float] = []
    audio = VoxlineClient([busy.url, tone.url], deadline=10, sleep=waits.append).stream(
        TEXT, cache=False)
    assert waits == []  # did not wait out the Retry-After first
    assert len(pcm(audio)) == TEXT_BYTES and audio.url == tone.url


@pytest.mark.slow
def test_a_busy_server_alone_is_retried_as_told_until_the_deadline(busy):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = VoxlineClient(busy.url, deadline=2.5, sleep=sleep)
    started = time.monotonic()
    with pytest.raises(VoxlineHTTPError) as caught:
        client.stream(TEXT)
    elapsed = time.monotonic() - started
    error = caught.value
    assert error.status == 503 and error.retry_after >= 1
    assert error.attempts == len(waits) + 1 >= 2
    assert all(abs(w - error.retry_after) < 0.05 for w in waits)  # waited as the server said
    assert elapsed <= 2.5  # gave up rather than sleep past its own deadline


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["silent", "headers only"])
def test_a_server_stalling_before_the_first_byte_is_left_for_the_next(raw, tone, kind):
    stalled = raw(kind)
    started = time.monotonic()
    audio = VoxlineClient([stalled.url, tone.url], timeout=0.5, deadline=10).stream(TEXT)
    waited = time.monotonic() - started
    assert len(pcm(audio)) == TEXT_BYTES and audio.url == tone.url
    assert 0.5 <= waited < 1.5 and stalled.requests == 1


@pytest.mark.slow
def test_a_server_killed_mid_stream_raises(tmp_path):
    server = ServerProcess(tone_env(tmp_path), tmp_path / "gunicorn.log").start()
    try:
        client = VoxlineClient(server.url, timeout=5, deadline=10)
        with client.stream(LONG, cache=False) as audio, pytest.raises(VoxlineStreamError):
            for data in audio:
                if audio.received > 24000:  # half a second of audio in
                    kill_tree(server.proc.pid)
                assert data
        assert 24000 < audio.received < LONG_BYTES
    finally:
        server.stop()


def kill_tree(pid: int) -> None:
    """SIGKILL gunicorn's workers, then its master: a machine losing the process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_cli_takes_several_urls(tone, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "a.pcm"
    result = run_cli(["--url", dead, "--url", tone.url, "say", TEXT, "-o", str(out), "--no-cache"])
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size == TEXT_BYTES
    out2 = tmp_path / "b.pcm"
    result = run_cli(["say", TEXT, "-o", str(out2)], VOXLINE_URL=f"{dead},{tone.url}")
    assert result.returncode == 0, result.stderr
    assert out2.stat().st_size == TEXT_BYTES

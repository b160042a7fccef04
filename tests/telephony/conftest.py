"""Fixtures for the telephony tests: a real Asterisk 22 (sid chroot), the TTS server, a tap."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from stub_tts import StubTts  # noqa: E402
from tap import Tap  # noqa: E402

from devtools.telephony.asterisk import Asterisk, prepare_chroot  # noqa: E402
from devtools.telephony.tts_server import TtsServer  # noqa: E402

REQUIRE_ENV = "VOXLINE_REQUIRE_ASTERISK"


def _asterisk_unavailable() -> str | None:
    """Why the real Asterisk cannot run here, or None when it can."""
    if os.environ.get("VOXLINE_ASTERISK_ROOT"):
        return None
    if os.geteuid() != 0:
        return "not root (the Asterisk chroot needs root)"
    if not shutil.which("debootstrap") or not shutil.which("chroot"):
        return "debootstrap is not installed (apt-get install debootstrap)"
    return None


@pytest.fixture(scope="session")
def asterisk_root() -> Path:
    """The cached sid chroot with Asterisk 22, built on first use (~40 s)."""
    reason = _asterisk_unavailable()
    if reason:
        message = f"REAL ASTERISK TESTS NOT RUN: {reason}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
        print(f"\n*** {message} ***", file=sys.stderr)
        pytest.skip(message)
    try:
        return prepare_chroot(build=True)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not prepare the Asterisk chroot:\n{exc.stderr}")


@pytest.fixture(scope="session")
def asterisk(asterisk_root: Path):
    """A running Asterisk with the example dialplan and the test contexts."""
    conf = {"voxline-test.conf": (HERE / "voxline-test.conf").read_text()}
    instance = Asterisk(asterisk_root, conf)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory):
    """The real server with the Piper engine (or the stub when the server is not there)."""
    if not (ROOT / "app.py").exists():
        stub = StubTts()
        yield stub
        stub.close()
        return
    server = TtsServer(ROOT, "piper", tmp_path_factory.mktemp("tts") / "gunicorn.log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def tap(tts_server):
    """A recording proxy in front of the TTS server, fresh for each test."""
    proxy = Tap(tts_server.url)
    yield proxy
    proxy.close()


@pytest.fixture
def stub():
    """A stub TTS server whose failure mode a test can switch."""
    server = StubTts()
    yield server
    server.close()


@pytest.fixture
def second():
    """Another stub TTS server, for failover between two."""
    server = StubTts()
    yield server
    server.close()


@pytest.fixture
def call_id() -> str:
    """A unique id for one test call."""
    return uuid.uuid4().hex[:12]

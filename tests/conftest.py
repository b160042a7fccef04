"""Shared fixtures: apps with fake engines, a tiny random-weight XTTS, real gunicorn servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes`, `bench.make_xtts_checkpoint`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def engine():
    """The fake engine most API tests inject (modules needing another one override this)."""
    from tests.fakes import FakeEngine

    return FakeEngine()


@pytest.fixture
def client(make_app, engine):
    """A test client of an app serving `engine`, loaded synchronously."""
    return make_app(engine).test_client()


@pytest.fixture
def make_app(tmp_path):
    """Build an app around an injected engine, loaded synchronously."""
    from voxline.server.app import create_app

    apps = []

    def build(engine, **settings):
        base = {"speakers_dir": tmp_path / "speakers", "cache_dir": tmp_path / "cache",
                "lexicons_dir": tmp_path / "lexicons", "warmup": False}
        base.update(settings)
        apps.append(create_app({"settings": base, "engine": engine, "background": False}))
        return apps[-1]

    yield build
    # Stop each app's scheduler workers (not waiting for work a test left blocked): idle
    # workers of earlier tests would otherwise keep waking and taking the GIL from later
    # in-process timing tests (168 of them after the server, product and realtime tests).
    for app in apps:
        app.services.close(timeout=0)


@pytest.fixture
def loading_app(tmp_path):
    """An app still loading its engine: voices are ready once the returned gate is set."""
    import threading

    from tests.fakes import FakeEngine
    from voxline.server.app import create_app

    gate = threading.Event()

    class SlowVoices(FakeEngine):
        def builtin_voices(self):
            gate.wait(10)
            return super().builtin_voices()

    app = create_app({"settings": {"speakers_dir": tmp_path / "speakers",
                                   "cache_dir": tmp_path / "cache",
                                   "lexicons_dir": tmp_path / "lexicons", "warmup": False},
                      "engine": SlowVoices()})
    yield app, gate
    gate.set()
    app.services.close(timeout=0)


@pytest.fixture(scope="session")
def tiny_xtts(tmp_path_factory) -> Path:
    """A tiny random-weight XTTS v2 checkpoint folder, built once per session."""
    from bench.make_xtts_checkpoint import build

    return build("tiny", tmp_path_factory.mktemp("tiny-xtts"), seed=0)


class ServerProcess:
    """A real gunicorn process serving `app:create_app()` on a loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path,
                 app: str = "app:create_app()") -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # No load balancer in front: no drain delay on SIGTERM (tests/cluster sets its own).
        self.env = {"VOXLINE_DRAIN_DELAY_S": "0", **os.environ, **env,
                    "VOXLINE_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> ServerProcess:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or too busy loading to answer within 1 s
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log_tail()}")

    def read_log(self) -> str:
        """The whole log (a line searched for can be far back: /ready polls add a line
        every 0.2 s while a slow machine loads)."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        """The log's end, for an error message."""
        return self.read_log()[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


class Servers:
    """Real gunicorn servers started for a test or a module; `place(n)` gives the n-th
    server's default cache folder and log file."""

    def __init__(self, place) -> None:
        self.place = place
        self.started: list[ServerProcess] = []

    def spawn(self, app: str = "app:create_app()", **env: str) -> ServerProcess:
        """`app` may be `tests.fakes:create_app()`: a fake engine behind real gunicorn."""
        cache, log = self.place(len(self.started))
        env.setdefault("VOXLINE_CACHE_DIR", str(cache))
        env.setdefault("VOXLINE_LEXICONS_DIR", str(cache / "lexicons"))
        server = ServerProcess(env, log, app)
        self.started.append(server)
        return server.start()

    def stop(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def spawn_server(tmp_path):
    """Start real gunicorn servers with the given VOXLINE_* environment (one cache folder for
    the test's servers, as a restart would find it); stops them after."""
    servers = Servers(lambda n: (tmp_path / "cache", tmp_path / f"gunicorn-{n}.log"))
    yield servers.spawn
    servers.stop()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """`spawn_server` for servers shared by the tests of one module (a folder each)."""

    def place(_n: int):
        folder = tmp_path_factory.mktemp("server")
        return folder / "cache", folder / "gunicorn.log"

    servers = Servers(place)
    yield servers.spawn
    servers.stop()

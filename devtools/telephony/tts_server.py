"""Start the Voxline server (gunicorn, as deployed) on a free loopback port for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TtsServer:
    """The real Voxline server (gunicorn) on a free loopback port; `env` adds to or
    overrides its environment."""

    def __init__(self, repo: Path, engine: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {
            **os.environ,
            "VOXLINE_ENGINE": engine,
            "VOXLINE_BIND": f"127.0.0.1:{self.port}",
            "VOXLINE_CACHE_DIR": str(log.parent / "server-cache"),
            "VOXLINE_DRAIN_DELAY_S": "0",  # no load balancer to wait for: stop at once
            # Admission off: the telephony tests place up to ten calls at once to check what
            # each call hears and which requests reached the server; under the suite's load
            # the measured capacity refused 3 of them with 503. A refusal and the clients'
            # wait for its Retry-After are tested on their own (test_retry_after.py).
            "VOXLINE_TARGET_LOAD": "0",
            **(env or {}),
        }
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
        self.log = log.open("ab")
        # Its own process group: stop() can end the workers too if the master must be killed.
        self.proc = subprocess.Popen(
            gunicorn,
            cwd=repo,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> TtsServer:
        """Poll /ready until 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, grace: float = 15.0) -> None:
        """Terminate gunicorn; after `grace` seconds kill its whole process group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:  # workers left behind by a master that did not shut down cleanly
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()

"""Start a Voxline server through the real gunicorn config, wait for /ready, stop it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .client import Target, get_json

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SpawnConfig:
    """What the spawned server runs: its `VOXLINE_*` environment plus the Python to run it."""

    engine: str
    xtts_dir: Path | None = None
    device: str | None = None
    fp16: bool = False
    deepspeed: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    ready_timeout_s: float = 600.0

    def env(self, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "VOXLINE_ENGINE": self.engine,
                "VOXLINE_BIND": f"127.0.0.1:{port}",
                "VOXLINE_FP16": "1" if self.fp16 else "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.xtts_dir is not None:
            env["VOXLINE_XTTS_DIR"] = str(Path(self.xtts_dir).resolve())  # cwd is the repo
        if self.device:
            env["VOXLINE_DEVICE"] = self.device
        if self.deepspeed:
            env["VOXLINE_DEEPSPEED"] = self.deepspeed
        env.update(self.extra_env)
        return env

    def voxline_env(self, port: int) -> dict[str, str]:
        """Only the `VOXLINE_*` variables, for the report."""
        return {k: v for k, v in self.env(port).items() if k.startswith("VOXLINE_")}


class SpawnedServer:
    """A gunicorn process group of our own; a context manager that always stops it."""

    def __init__(self, config: SpawnConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.port = free_port()
        self.target = Target("127.0.0.1", self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SpawnedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        cmd = [
            self.config.python,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "app:create_app()",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        logger.info("starting %s on port %d (log %s)", " ".join(cmd), self.port, self.log_path)
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=self.config.env(self.port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with code {self.proc.returncode} before it was ready; "
                    f"last log lines:\n{self.log_tail()}"
                )
            try:
                status, _ = get_json(self.target, "/ready", timeout=2.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"server not ready after {self.config.ready_timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the gunicorn master (it stops its workers), SIGKILL our group if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("server did not stop in %.0f s; killing its process group", grace_s)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

"""A local cluster: N gunicorn replicas behind HAProxy with the shipped config, on loopback.

For trying the production arrangement on one machine and for the tests: `scripts/cluster N
[engine]` runs it until Ctrl-C. Replicas are whole process groups (gunicorn master and worker),
so `kill` is a crash and `restart` is a rolling restart with a graceful drain.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
BACKEND = "voxline"
_MAX_SOCKET_PATH = 97  # HAProxy's limit for a unix socket path


class ClusterError(RuntimeError):
    """A replica or the proxy did not start, or did not become routable in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Replica:
    """One gunicorn process group serving `app:create_app()` on its own port."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "VOXLINE_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `kill` takes master and worker
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ClusterError(f"replica {self.name} exited; see {self.log_path}")
            if _http_status(self.url + "/ready") == 200:
                return
            time.sleep(0.1)
        raise ClusterError(f"replica {self.name} not ready in {timeout} s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float) -> int:
        """SIGTERM (graceful drain), then wait for the whole group; SIGKILL past `timeout`."""
        if not self.running:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL master and worker at once: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Proxy:
    """HAProxy with the shipped config plus a generated file naming the replicas."""

    def __init__(self, run_dir: Path, replicas: list[Replica], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket_path = run_dir / "haproxy.sock"
        if len(str(self.socket_path)) > _MAX_SOCKET_PATH:
            self.socket_path = Path(tempfile.mkdtemp(prefix="voxline-", dir="/tmp")) / "h.sock"
        self.replicas_cfg = run_dir / "replicas.cfg"
        self.log_path = run_dir / "haproxy.log"
        self.proc: subprocess.Popen | None = None
        lines = [
            "global",
            f"    stats socket {self.socket_path} mode 600 level admin",
            f"backend {BACKEND}",
        ]
        lines += [f"    server {r.name} 127.0.0.1:{r.port}" for r in replicas]
        self.replicas_cfg.write_text("\n".join(lines) + "\n")

    def start(self, haproxy: str) -> None:
        env = {**os.environ, "VOXLINE_PROXY_BIND": f"127.0.0.1:{self.port}"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [haproxy, "-db", "-f", str(HAPROXY_CONFIG), "-f", str(self.replicas_cfg)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def command(self, line: str, timeout: float = 2.0) -> str:
        """One command on HAProxy's runtime API (stats socket)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket_path))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """{replica name: "UP" | "DOWN" | "MAINT" | ...} as HAProxy's checks see them now."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            r["svname"]: r["status"].split()[0]
            for r in rows
            if r["pxname"] == BACKEND and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_state(self, name: str, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ClusterError(f"haproxy exited; see {self.log_path}")
            try:
                if self.server_states().get(name) == state:
                    return
            except OSError:
                pass  # the socket appears once haproxy has parsed its config
            time.sleep(0.05)
        raise ClusterError(f"haproxy did not see {name} {state} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.socket_path.unlink(missing_ok=True)
        if self.socket_path.parent != self.replicas_cfg.parent:
            self.socket_path.parent.rmdir()  # the short folder made for a long run_dir


def find_haproxy() -> str:
    """The haproxy binary (Debian puts it in /usr/sbin, not always on a user's PATH)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise ClusterError("haproxy is not installed (Debian: apt-get install haproxy)")
    return found


class Cluster:
    """N replicas of one engine and the proxy in front; `url` is the proxy's."""

    def __init__(
        self,
        replicas: int,
        engine: str | None = None,
        run_dir: Path | None = None,
        env: dict[str, str] | None = None,
        devices: list[str] | None = None,
        proxy_port: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="voxline-cluster-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        base = {**os.environ, **(env or {})}
        if engine:
            base["VOXLINE_ENGINE"] = engine
        self.replicas = []
        for i in range(replicas):
            replica_env = dict(base)
            if devices:  # one replica per device: cuda:0, cuda:1, ... round robin
                replica_env["VOXLINE_DEVICE"] = devices[i % len(devices)]
            self.replicas.append(Replica(f"r{i + 1}", replica_env, self.run_dir / f"r{i + 1}.log"))
        self.proxy = Proxy(self.run_dir, self.replicas, proxy_port)
        self.url = self.proxy.url

    def start(self, timeout: float = 120.0) -> Cluster:
        haproxy = find_haproxy()
        try:
            for replica in self.replicas:
                replica.start()
            self.proxy.start(haproxy)
            for replica in self.replicas:
                replica.wait_ready(timeout)
                self.proxy.wait_state(replica.name, "UP", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def kill(self, name: str) -> None:
        """Crash one replica (SIGKILL to its process group)."""
        self.replica(name).kill()

    def restart(self, name: str, grace: float = 60.0, timeout: float = 120.0) -> None:
        """Drain and stop one replica (SIGTERM), start it again, wait until it is routable."""
        replica = self.replica(name)
        replica.terminate(grace)
        replica.start()
        replica.wait_ready(timeout)
        self.proxy.wait_state(name, "UP", timeout)

    def rolling_restart(self, grace: float = 60.0) -> None:
        """Restart every replica in turn, each routable again before the next one stops."""
        for replica in self.replicas:
            self.restart(replica.name, grace)

    def stop(self, grace: float = 30.0) -> None:
        """Stop replicas gracefully (in parallel), then the proxy."""
        threads = [threading.Thread(target=r.terminate, args=(grace,)) for r in self.replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.proxy.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`scripts/cluster N [engine]`: run until Ctrl-C or SIGTERM, then stop everything."""
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=main.__doc__)
    parser.add_argument("replicas", type=int, help="number of gunicorn replicas")
    parser.add_argument("engine", nargs="?", help="VOXLINE_ENGINE for every replica")
    parser.add_argument(
        "--devices",
        help="comma-separated VOXLINE_DEVICE per replica, round robin (e.g. cuda:0,cuda:1)",
    )
    parser.add_argument("--port", type=int, help="proxy port (default: a free one)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("at least one replica")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    devices = args.devices.split(",") if args.devices else None
    cluster = Cluster(args.replicas, args.engine, devices=devices, proxy_port=args.port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster.start()
    sys.stdout.write(f"{cluster.url}\n")
    sys.stdout.flush()
    logger.info(
        "%d replicas behind HAProxy at %s; logs in %s; Ctrl-C stops everything",
        args.replicas,
        cluster.url,
        cluster.run_dir,
    )
    while not stop.wait(0.5):
        if cluster.proxy.proc.poll() is not None:
            logger.error("haproxy exited; see %s", cluster.proxy.log_path)
            break
    logger.info("stopping: replicas drain, then the proxy")
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Figures for the failure/hardening work, each measured side by side in one run.

  follower   a phrase-cache follower's completion time alone vs with a leader that never reads
  rss        the gunicorn worker's RSS with 8 stalled readers, for this checkout and another
             (e.g. a worktree of an older commit: --other-root)
  retry      Retry-After of 503s vs the wait admitted requests really had

Usage: .venv/bin/python bench/hardening.py follower|rss|retry [--other-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
LONG_TEXT = " ".join(
    f"Sentence {i} of the long announcement reads the terms and conditions slowly and clearly."
    for i in range(12))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real gunicorn from `root` (its own .venv) on a free port."""

    def __init__(self, root: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cache = tempfile.mkdtemp(prefix="voxline-bench-")
        full = {**os.environ, "VOXLINE_BIND": f"127.0.0.1:{self.port}",
                "VOXLINE_CACHE_DIR": cache, **env}
        python = root / ".venv" / "bin" / "python"
        self.proc = subprocess.Popen(
            [str(python), "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=root, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/ready", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("server not ready")

    def worker_rss_mb(self) -> float:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        worker = int(children.split()[0])
        for line in Path(f"/proc/{worker}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def worker_cpu_s(self) -> float:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        fields = Path(f"/proc/{int(children.split()[0])}/stat").read_text().split(")")[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def stalled_reader(port: int, body: dict) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    data = json.dumps(body).encode()
    sock.sendall(b"POST /tts_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def timed_read(url: str, body: dict) -> tuple[float, int]:
    started = time.perf_counter()
    with requests.post(url + "/tts_stream", json=body, stream=True, timeout=600) as r:
        r.raise_for_status()
        size = sum(len(part) for part in r.iter_content(None))
    return time.perf_counter() - started, size


def follower(_args) -> None:
    server = Server(ROOT, VOXLINE_ENGINE="piper")
    try:
        body = {"text": LONG_TEXT, "format": "pcm"}
        alone_s, alone_size = timed_read(server.url, {**body, "cache": False})
        leader = stalled_reader(server.port, {**body, "_tag": "shared"})
        time.sleep(0.5)
        shared_s, shared_size = timed_read(server.url, {**body, "_tag": "shared"})
        leader.close()
    finally:
        server.stop()
    print(f"piper, {alone_size / 2 / 22050:.1f} s of audio ({alone_size / 1e6:.1f} MB pcm)")
    print(f"follower alone:                {alone_s:6.2f} s, {alone_size} bytes")
    print(f"follower with stalled leader:  {shared_s:6.2f} s, {shared_size} bytes "
          f"({shared_s / alone_s:.2f}x)")


def rss(args) -> None:
    roots = [("this checkout", ROOT)]
    if args.other_root:
        roots.append((str(args.other_root), Path(args.other_root)))
    for label, root in roots:
        server = Server(root, VOXLINE_ENGINE="piper")
        try:
            for _ in range(2):  # the engine's own working memory, reached by normal use
                timed_read(server.url, {"text": LONG_TEXT, "format": "pcm", "cache": False})
            idle, cpu = server.worker_rss_mb(), server.worker_cpu_s()
            text = " ".join([LONG_TEXT] * 4)  # about 4,300 characters: over 3 minutes
            socks = [stalled_reader(server.port, {"text": f"{text} {i}", "format": "pcm",
                                                  "cache": False}) for i in range(8)]
            time.sleep(args.seconds)
            loaded, cpu = server.worker_rss_mb(), server.worker_cpu_s() - cpu
            for s in socks:
                s.close()
        finally:
            server.stop()
        print(f"{label}: worker RSS after 2 served requests {idle:.0f} MB; with 8 stalled "
              f"readers for {args.seconds:.0f} s: {loaded:.0f} MB (+{loaded - idle:.0f} MB), "
              f"{cpu:.1f} CPU-s spent synthesising for nobody")


def retry(_args) -> None:
    server = Server(ROOT, VOXLINE_ENGINE="tone", VOXLINE_MAX_ACTIVE="2", VOXLINE_MAX_QUEUE="2")
    body = {"text": "A sentence of about three seconds of audio.", "format": "pcm",
            "cache": False}
    results: list = []
    try:
        for _ in range(2):
            timed_read(server.url, body)

        def call() -> None:
            started = time.monotonic()
            with requests.post(server.url + "/tts_stream", json=body, stream=True,
                               timeout=120) as r:
                first = time.monotonic() - started
                if r.status_code == 200:
                    b"".join(r.iter_content(None))
                results.append((r.status_code, first, r.headers.get("Retry-After")))

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
            time.sleep(0.005)
        for t in threads:
            t.join(120)
    finally:
        server.stop()
    waits = sorted(first for status, first, _ in results if status == 200)
    hints = sorted({int(ra) for status, _, ra in results if status == 503})
    print(f"tone engine, MAX_ACTIVE=2 MAX_QUEUE=2, 20 arrivals: {len(waits)} served, "
          f"{20 - len(waits)} refused")
    print(f"first-audio waits of the admitted: {', '.join(f'{w:.2f}' for w in waits)} s")
    print(f"Retry-After of the 503s: {hints} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=("follower", "rss", "retry"))
    parser.add_argument("--other-root", type=Path, help="another checkout to compare (rss)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    {"follower": follower, "rss": rss, "retry": retry}[args.figure](args)


if __name__ == "__main__":
    sys.exit(main())

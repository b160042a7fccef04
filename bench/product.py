"""Product-surface measurements through a real gunicorn:

1. time to first audio (TTFA) of a phrase-cache hit vs. the same phrase synthesised
   (`cache: false`), p50/p90 over N requests, measured by the client from sending the request
   to the first body byte;
2. upload-to-usable time of a voice on the tiny random-weight XTTS: POST /v1/voices with a
   10 s clip until 201, and until the first audio byte of a request with that voice.

    .venv/bin/python bench/product.py                      # tone engine + tiny XTTS
    .venv/bin/python bench/product.py --engine piper --xtts-dir /tmp/tiny6
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "bench-admin-key"
PHRASE = "Thank you for calling. Please hold while we connect you."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn serving `app:create_app()` with the given VOXLINE_* settings."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "VOXLINE_BIND": f"127.0.0.1:{self.port}"}
        self.log = log

    def __enter__(self) -> Server:
        self.log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                if request(self.port, "GET", "/ready")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("server not ready")

    def __exit__(self, *exc_info: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log_file.close()


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, float, bytes, dict]:
    """(status, seconds to the first body byte, body, headers) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    first = response.read1(65536)
    ttfa = time.perf_counter() - started
    data = first + response.read()
    conn.close()
    return response.status, ttfa, data, dict(response.getheaders())


def speak(port: int, fields: dict) -> tuple[float, str]:
    body = json.dumps({"text": PHRASE, "format": "pcm", **fields}).encode()
    status, ttfa, data, headers = request(port, "POST", "/tts_stream", body,
                                          {"Content-Type": "application/json"})
    assert status == 200 and data, (status, data[:200])
    return ttfa, headers.get("X-Voxline-Cache", "")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_cache(engine: str, n: int, tmp: Path) -> None:
    env = {"VOXLINE_ENGINE": engine, "VOXLINE_CACHE_DIR": str(tmp / "cache"),
           "VOXLINE_SPEAKERS_DIR": str(tmp / "no-speakers")}
    with Server(env, tmp / f"{engine}.log") as server:
        speak(server.port, {"cache": False})  # warm the path
        uncached = [speak(server.port, {"cache": False})[0] for _ in range(n)]
        first, kind = speak(server.port, {})
        assert kind == "miss", kind
        hits = []
        for _ in range(n):
            ttfa, kind = speak(server.port, {})
            assert kind == "hit", kind
            hits.append(ttfa)
    print(f"TTFA through gunicorn, {engine} engine, {n} requests each, "
          f"{len(PHRASE)}-character phrase as pcm:")
    for label, values in (("synthesised (cache: false)", uncached), ("phrase-cache hit", hits)):
        print(f"  {label:28s} p50 {percentile(values, 0.5) * 1000:8.2f} ms   "
              f"p90 {percentile(values, 0.9) * 1000:8.2f} ms   "
              f"min {min(values) * 1000:7.2f} ms")


def ten_second_clip(path: Path) -> Path:
    """10 s of real speech: the bundled default voice (8.3 s, Piper-made) looped, via ffmpeg."""
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "1", "-i",
                    str(ROOT / "speakers" / "default.wav"), "-t", "10", "-y", str(path)],
                   check=True)
    return path


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: audio/wav\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def measure_upload(xtts_dir: Path, tmp: Path, repeats: int) -> None:
    if not (xtts_dir / "model.pth").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_xtts_checkpoint.py"),
                        "--size", "tiny", str(xtts_dir)], check=True, cwd=ROOT)
    clip = ten_second_clip(tmp / "ten.wav").read_bytes()
    env = {"VOXLINE_ENGINE": "xtts", "VOXLINE_XTTS_DIR": str(xtts_dir),
           "VOXLINE_CACHE_DIR": str(tmp / "xtts-cache"), "VOXLINE_ADMIN_KEYS": ADMIN_KEY,
           "VOXLINE_SPEAKERS_DIR": str(tmp / "xtts-speakers")}
    (tmp / "xtts-speakers").mkdir(exist_ok=True)
    (tmp / "xtts-speakers" / "default.wav").write_bytes(
        (ROOT / "speakers" / "default.wav").read_bytes())
    created_s, usable_s, server_s = [], [], []
    with Server(env, tmp / "xtts.log") as server:
        for i in range(repeats):
            body, content_type = multipart({"name": f"caller{i}"}, {"clip": ("ten.wav", clip)})
            started = time.perf_counter()
            status, _, data, _ = request(server.port, "POST", "/v1/voices", body, {
                "Content-Type": content_type, "Authorization": f"Bearer {ADMIN_KEY}"})
            created = time.perf_counter()
            assert status == 201, data
            speak_body = json.dumps({"text": "Hello.", "speaker": f"caller{i}", "format": "pcm",
                                     "max_new_tokens": 10, "min_new_tokens": 10}).encode()
            status, ttfa, _, _ = request(server.port, "POST", "/tts_stream", speak_body,
                                         {"Content-Type": "application/json"})
            assert status == 200
            created_s.append(created - started)
            usable_s.append(created - started + ttfa)
            server_s.append(json.loads(data)["ready_s"])
    print(f"Voice upload on the tiny XTTS (CPU), 10 s clip (WAV, {len(clip) / 1e3:.0f} kB), "
          f"{repeats} uploads:")
    print(f"  POST /v1/voices until 201            p50 {statistics.median(created_s):6.3f} s  "
          f"(server side: decode, check, write, latents {statistics.median(server_s):.3f} s)")
    print(f"  until the first audio with the voice p50 {statistics.median(usable_s):6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="tone", choices=("tone", "piper"))
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--xtts-dir", type=Path, default=Path("/tmp/tiny6"))
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--skip-xtts", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voxline-bench-") as tmp:
        measure_cache(args.engine, args.requests, Path(tmp))
        if not args.skip_xtts:
            measure_upload(args.xtts_dir, Path(tmp), args.uploads)


if __name__ == "__main__":
    main()

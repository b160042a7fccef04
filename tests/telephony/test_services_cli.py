"""The services as deployed: `python -m` entry points, graceful stop, and a torch-free import."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.telephony.tts_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def spawn(module: str, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m module` from the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def connect(port: int, timeout: float = 10) -> socket.socket:
    """Connect once the service listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "service never listened"
            time.sleep(0.05)


def test_telephony_imports_no_torch_numpy_or_server():
    code = (
        "import sys, telephony.fastagi, telephony.audiosocket.service, telephony.voxagi.script;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'voxline', "
        "'flask')]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_fastagi_finishes_the_call_in_progress_on_sigterm(stub, tmp_path):
    port = free_port()
    proc = spawn(
        "telephony.fastagi",
        "--bind",
        f"127.0.0.1:{port}",
        "--grace",
        "5",
        env={"VOXLINE_TTS_URL": stub.url, "VOXLINE_TTS_CACHE_DIR": str(tmp_path)},
    )
    try:
        sock = connect(port)
        sock.sendall(b"agi_network: yes\nagi_network_script: say\nagi_arg_1: Hello.\n\n")
        reader = sock.makefile("rb")
        variables, stopped = {}, False
        for raw in reader:
            line = raw.decode().strip()
            if line.startswith("STREAM FILE") and not stopped:
                proc.send_signal(signal.SIGTERM)  # mid-prompt
                stopped = True
                time.sleep(0.5)
                sock.sendall(b"200 result=0 endpos=4000\n")
            elif line.startswith("SET VARIABLE"):
                name, value = line.split(" ", 3)[2:]
                variables[name.strip('"')] = value.strip('"')
                sock.sendall(b"200 result=1\n")
            else:
                sock.sendall(b"200 result=0\n")
        reader.close()
        sock.close()
        assert variables["VOXLINE_STATUS"] == "OK"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_audiosocket_service_serves_and_stops_on_sigterm(stub):
    audio, control = free_port(), free_port()
    proc = spawn(
        "telephony.audiosocket",
        "--bind",
        f"127.0.0.1:{audio}",
        "--control",
        f"127.0.0.1:{control}",
        env={"VOXLINE_TTS_URL": stub.url},
    )
    try:
        connect(audio).close()
        deadline = time.monotonic() + 10
        while True:  # the control API binds after the audio port
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{control}/health",
                                            timeout=5) as response:
                    assert json.loads(response.read())["status"] == "ok"
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "control API never answered"
                time.sleep(0.1)
        threading.Timer(0.1, proc.send_signal, (signal.SIGTERM,)).start()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

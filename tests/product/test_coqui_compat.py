"""coqui xtts-streaming-server drop-in, replaying Pipecat XTTSService's exact requests.

Pipecat (pipecat-ai 1.x, src/pipecat/services/xtts/tts.py) is not installed here: it pins
soxr 1.0 and soundfile 0.13 below ours. Its XTTSService does, verbatim:

    GET  {base_url}/studio_speakers                      -> r.json(): name -> latents
    POST {base_url}/tts_stream  json={
        "text": text.replace(".", "").replace("*", ""),
        "language": "en",
        "speaker_embedding": embeddings["speaker_embedding"],
        "gpt_cond_latent": embeddings["gpt_cond_latent"],
        "add_wav_header": False,
        "stream_chunk_size": 20,
    }                                                   -> raw s16le at 24 kHz, in chunks
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.product.conftest import LatentEngine, speech_like, write_clip
from voxline.audio import float_to_int16


def pipecat_payload(speakers: dict, voice: str, text: str = "Hello. How are you?") -> dict:
    embeddings = speakers[voice]
    return {
        "text": text.replace(".", "").replace("*", ""),
        "language": "en",
        "speaker_embedding": embeddings["speaker_embedding"],
        "gpt_cond_latent": embeddings["gpt_cond_latent"],
        "add_wav_header": False,
        "stream_chunk_size": 20,
    }


@pytest.fixture
def engine():
    return LatentEngine()


def test_studio_speakers_are_nested_lists_of_every_voice(client, engine):
    speakers = client.get("/studio_speakers").json
    assert set(speakers) == {"alice", "bob"}
    alice = speakers["alice"]
    assert set(alice) == {"speaker_embedding", "gpt_cond_latent"}
    assert len(alice["speaker_embedding"]) == 16 and isinstance(alice["speaker_embedding"][0],
                                                                 float)
    assert np.asarray(alice["gpt_cond_latent"]).shape == (4, 8)  # coqui squeezes the batch


def test_pipecat_request_streams_raw_24k_pcm_of_those_latents(client, engine):
    speakers = client.get("/studio_speakers").json
    response = client.post("/tts_stream", json=pipecat_payload(speakers, "bob"))
    assert response.status_code == 200
    assert response.headers["X-Sample-Rate"] == "24000"
    assert response.headers["Content-Type"].startswith("audio/pcm")
    expected = float_to_int16(engine.expected(engine.builtin_voices()["bob"])).tobytes()
    assert response.data == expected  # one sentence once the dots are gone


def test_wav_header_first_by_default(client):
    speakers = client.get("/studio_speakers").json
    payload = pipecat_payload(speakers, "alice")
    del payload["add_wav_header"]
    payload["stream_chunk_size"] = "20"  # coqui's original server took a string
    response = client.post("/tts_stream", json=payload)
    assert response.status_code == 200
    assert response.data[:4] == b"RIFF" and response.data[36:40] == b"data"


def test_voxline_body_on_the_same_route_is_still_voxline(client):
    response = client.post("/tts_stream", json={"text": "Hi.", "speaker": "bob"})
    assert response.headers["Content-Type"] == "audio/L16; rate=24000; channels=1"


def test_clone_speaker_returns_latents_usable_by_tts_stream(client, engine, tmp_path):
    clip = write_clip(tmp_path / "ref.wav", speech_like(5)).read_bytes()
    cloned = client.post("/clone_speaker", data={"wav_file": (io.BytesIO(clip), "ref.wav")},
                         content_type="multipart/form-data")
    assert cloned.status_code == 200, cloned.get_data(as_text=True)
    latents = cloned.json
    assert len(latents["speaker_embedding"]) == 16
    assert np.asarray(latents["gpt_cond_latent"]).shape == (4, 8)
    assert engine.conditioned == 1
    spoken = client.post("/tts_stream", json=pipecat_payload({"me": latents}, "me"))
    assert spoken.status_code == 200 and len(spoken.data) == 2 * 3 * FakeEngine().chunk_len
    assert client.get("/speakers").json["speakers"] == ["alice", "bob"]  # nothing stored


@pytest.mark.parametrize("change, param", [
    ({"speaker_embedding": [0.1] * 15}, "speaker_embedding"),
    ({"gpt_cond_latent": [[0.1] * 7]}, "gpt_cond_latent"),
    ({"gpt_cond_latent": "nope"}, "gpt_cond_latent"),
    ({"speaker_embedding": []}, "speaker_embedding"),
    ({"speaker_embedding": [float("nan")] * 16}, "speaker_embedding"),
    ({"add_wav_header": "yes"}, None),
    ({"text": ""}, None),
    ({"language": "xx"}, None),
    ({"stream_chunk_size": 0}, None),
])
def test_bad_coqui_requests_are_400(client, engine, change, param):
    speakers = client.get("/studio_speakers").json
    payload = {**pipecat_payload(speakers, "alice"), **change}
    response = client.post("/tts_stream", json=payload)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["message"]
    assert engine.started == 0


def test_engines_without_latents_say_so(make_app, tmp_path):
    client = make_app(FakeEngine()).test_client()
    payload = {"text": "Hi", "language": "en", "speaker_embedding": [0.0] * 16,
               "gpt_cond_latent": [[0.0] * 8] * 4}
    for response in (client.post("/tts_stream", json=payload), client.get("/studio_speakers")):
        assert response.status_code == 400
        assert response.json["error"] == "latents_unsupported"
        assert "does not take XTTS latents" in response.json["message"]
    clip = write_clip(tmp_path / "ref.wav", speech_like(5)).read_bytes()
    cloned = client.post("/clone_speaker", data={"wav_file": (io.BytesIO(clip), "ref.wav")},
                         content_type="multipart/form-data")
    assert cloned.status_code == 400 and cloned.json["error"] == "latents_unsupported"


def test_clone_speaker_validates_the_clip(client, tmp_path):
    missing = client.post("/clone_speaker", data={}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.json["error"] == "missing_clip"
    junk = client.post("/clone_speaker", data={"wav_file": (io.BytesIO(b"junk" * 100), "x.wav")},
                       content_type="multipart/form-data")
    assert junk.status_code == 400 and junk.json["error"] == "not_audio"

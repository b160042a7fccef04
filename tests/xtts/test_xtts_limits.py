"""XTTS-specific hostile input through a real gunicorn on the tiny checkpoint: forced lengths
past the model's position limit and coqui latents of the wrong shape are 400s, not failures
mid-stream or minutes of wasted compute."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
FORCED = {"top_k": 1, "seed": 1, "format": "pcm", "cache": False}


@pytest.fixture(scope="module")
def server(module_server, tiny_xtts):
    return module_server(VOXLINE_ENGINE="xtts", VOXLINE_XTTS_DIR=str(tiny_xtts),
                         VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"))


def test_forced_length_beyond_the_position_limit_is_a_400(server):
    # The tiny checkpoint's GPT holds 43 audio positions: 43 tokens work, 44 raised mid-stream.
    ok = requests.post(server.url + "/tts_stream", timeout=120,
                       json={**FORCED, "text": "Hello.", "min_new_tokens": 43,
                             "max_new_tokens": 43})
    assert ok.status_code == 200 and len(ok.content) > 40 * 1024 * 2
    for field in ("max_new_tokens", "min_new_tokens"):
        too_many = requests.post(server.url + "/tts_stream", timeout=30,
                                 json={**FORCED, "text": "Hello.", "min_new_tokens": 1,
                                       "max_new_tokens": 200, field: 200})
        assert too_many.status_code == 400
        assert too_many.json()["error"] == "invalid_parameter"
        assert "limit of 43" in too_many.json()["message"]


def test_coqui_latents_must_have_the_engines_exact_shape(server):
    voice = requests.get(server.url + "/studio_speakers", timeout=30).json()["default"]
    rows = len(voice["gpt_cond_latent"])
    width = len(voice["gpt_cond_latent"][0])
    body = {"text": "Hello.", "language": "en", "add_wav_header": False,
            "speaker_embedding": voice["speaker_embedding"]}
    for bad_rows in (rows * 100, rows - 1, 1):
        latent = np.zeros((bad_rows, width), dtype=np.float32).tolist()
        refused = requests.post(server.url + "/tts_stream", timeout=30,
                                json={**body, "gpt_cond_latent": latent})
        assert refused.status_code == 400, bad_rows
        assert refused.json()["error"] == "invalid_latents"
    good = requests.post(server.url + "/tts_stream", timeout=120,
                         json={**body, "gpt_cond_latent": voice["gpt_cond_latent"],
                               "cache": False})
    assert good.status_code == 200 and len(good.content) > 0

"""All 17 XTTS languages through coqui's real front end and through HTTP on the tiny checkpoint."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import requests

from tests.conftest import ROOT
from voxline.engines.languages import SAMPLES, probe_languages

pytestmark = pytest.mark.slow

TOKENS = 20
# One GPT token decodes to 1024 samples at 22.05 kHz; the engine's output rate is 24 kHz.
EXPECTED_SAMPLES = TOKENS * 1024 * 24000 / 22050
FIXED = {
    "top_k": 1,
    "seed": 3,
    "min_new_tokens": TOKENS,
    "max_new_tokens": TOKENS,
    "format": "pcm",
    "sample_rate": 24000,
    "cache": False,
}


def tokenizer(tiny_xtts):
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return VoiceBpeTokenizer(vocab_file=str(tiny_xtts / "vocab.json"))


def test_coqui_front_end_loads_for_all_17_languages(tiny_xtts):
    support = probe_languages(SAMPLES, tokenizer(tiny_xtts).encode)
    assert support.unavailable == {}
    assert len(support.usable) == 17


def test_missing_packages_make_their_languages_unavailable(tiny_xtts, monkeypatch):
    # A None entry in sys.modules makes `import cutlet` raise ImportError, as on a host
    # without the package; coqui's own code runs unchanged.
    monkeypatch.setitem(sys.modules, "cutlet", None)
    monkeypatch.setitem(sys.modules, "pypinyin", None)
    support = probe_languages(SAMPLES, tokenizer(tiny_xtts).encode)
    assert sorted(support.unavailable) == ["ja", "zh-cn"]
    assert "cutlet" in support.unavailable["ja"]
    assert "coqui-tts[ja]" in support.unavailable["ja"]
    assert "Chinese requires: pypinyin" in support.unavailable["zh-cn"]
    assert len(support.usable) == 15 and "ko" in support.usable


def pcm(url: str, route: str, body: dict) -> np.ndarray:
    r = requests.post(url + route, json=body, timeout=120)
    assert r.status_code == 200, (body["language"], r.status_code, r.text[:300])
    return np.frombuffer(r.content, "<i2")


def test_every_language_speaks_through_http(spawn_server, tiny_xtts):
    server = spawn_server(
        VOXLINE_ENGINE="xtts",
        VOXLINE_XTTS_DIR=str(tiny_xtts),
        VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"),
    )
    languages = requests.get(server.url + "/languages", timeout=5).json()["languages"]
    assert sorted(languages) == sorted(SAMPLES)
    lengths = {}
    for language in languages:
        route = "/v1/audio/speech" if language in ("ja", "zh-cn") else "/tts_stream"
        body = {**FIXED, "text": SAMPLES[language], "language": language}
        if route == "/v1/audio/speech":  # the OpenAI door too (what Pipecat found empty)
            body = {
                "model": "tts-1",
                "voice": "default",
                "input": SAMPLES[language],
                "response_format": "pcm",
                "language": language,
                **{k: FIXED[k] for k in ("top_k", "seed", "min_new_tokens", "max_new_tokens")},
            }
        audio = pcm(server.url, route, body)
        lengths[language] = len(audio)
        assert np.abs(audio.astype(np.float64)).mean() > 1.0, language  # not silence
    # Each sample text is one sentence: one utterance of exactly TOKENS tokens each.
    print("samples per language:", lengths)
    assert len(set(lengths.values())) == 1, lengths
    assert abs(lengths["en"] - EXPECTED_SAMPLES) < 1024, lengths


def test_a_language_without_its_package_is_a_400_and_logged(spawn_server, tiny_xtts, tmp_path):
    # Shadow cutlet with a package that fails to import: the server of a user without it.
    shadow = tmp_path / "shadow" / "cutlet"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'cutlet'\", name='cutlet')\n"
    )
    server = spawn_server(
        VOXLINE_ENGINE="xtts",
        VOXLINE_XTTS_DIR=str(tiny_xtts),
        VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"),
        PYTHONPATH=str(shadow.parent),
    )
    languages = requests.get(server.url + "/languages", timeout=5).json()["languages"]
    assert "ja" not in languages and len(languages) == 16
    assert "language ja unavailable" in server.read_log()
    r = requests.post(
        server.url + "/tts", json={**FIXED, "text": SAMPLES["ja"], "language": "ja"}, timeout=60
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "unsupported_language"
    assert "cutlet" in r.json()["message"] and "coqui-tts[ja]" in r.json()["message"]
    r = requests.post(
        server.url + "/tts_stream",
        json={**FIXED, "text": SAMPLES["ja"], "language": "ja"},
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_language"
    assert "cutlet" in r.json()["message"]  # every route says why
    assert (
        len(pcm(server.url, "/tts_stream", {**FIXED, "text": SAMPLES["en"], "language": "en"})) > 0
    )

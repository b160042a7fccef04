"""The OpenAI-compatible speech API with a fake engine: request translation, voice aliases,
formats and OpenAI's error shape."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fakes import FakeEngine
from voxline.audio import float_to_int16
from voxline.server.errors import ApiError
from voxline.server.openai_api import OPENAI_VOICES, resolve_voice_name
from voxline.settings import Settings, SettingsError


@pytest.fixture
def client(make_app, engine):
    return make_app(engine, voice_aliases="echo=bob, nova=missing").test_client()


def speech(client, **body):
    body = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", **body}
    return client.post("/v1/audio/speech", json=body)


def expected_pcm(engine, voice):
    return float_to_int16(engine.expected(engine.builtin_voices()[voice])).tobytes()


def test_pcm_is_24k_s16le_of_the_default_voice_for_an_unmapped_alias(client, engine):
    response = speech(client, response_format="pcm")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/pcm; rate=24000; channels=1"
    assert response.headers["X-Voxline-Voice"] == "alice"  # the default voice
    assert response.data == expected_pcm(engine, "alice")


def test_mapped_alias_and_real_names(client, engine):
    assert speech(client, voice="echo", response_format="pcm").data == expected_pcm(engine, "bob")
    assert speech(client, voice="ECHO", response_format="pcm").headers["X-Voxline-Voice"] == "bob"
    assert speech(client, voice="bob", response_format="pcm").data == expected_pcm(engine, "bob")
    assert speech(client, voice={"id": "bob"}, response_format="pcm").status_code == 200
    # mapped to a voice that does not exist: the default voice, not an error
    assert speech(client, voice="nova", response_format="pcm").headers["X-Voxline-Voice"] == \
        "alice"


def test_default_format_is_mp3(client):
    response = speech(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.data[:3] == b"ID3" or response.data[0] == 0xFF


@pytest.mark.parametrize("fmt, content_type, magic", [
    ("wav", "audio/wav", b"RIFF"), ("flac", "audio/flac", b"fLaC"),
    ("opus", "audio/ogg; codecs=opus", b"OggS"), ("aac", "audio/aac", b"\xff\xf1"),
])
def test_formats(client, fmt, content_type, magic):
    response = speech(client, response_format=fmt)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.data.startswith(magic)


def test_speed_and_voxline_extras_pass_through(client, engine):
    response = speech(client, response_format="pcm", speed=1.5, seed=3, language="de",
                      sample_rate=8000, cache=False, instructions="Speak calmly.")
    assert response.status_code == 200
    assert response.headers["X-Sample-Rate"] == "8000"
    assert len(response.data) == 2 * engine.n_chunks * engine.chunk_len // 3


# (description, body changes, status, code, param)
ERRORS = [
    ("missing input", {"input": None}, 400, "missing_input", "input"),
    ("empty input", {"input": "  "}, 400, "missing_input", "input"),
    ("input not a string", {"input": 5}, 400, "invalid_type", "input"),
    ("input too long", {"input": "a" * 301}, 413, "text_too_long", "input"),
    ("unknown voice", {"voice": "zed"}, 400, "voice_not_found", "voice"),
    ("missing voice", {"voice": None}, 400, "missing_voice", "voice"),
    ("bad format", {"response_format": "aiff"}, 400, "unsupported_format", "response_format"),
    ("speed too high", {"speed": 9}, 400, "invalid_parameter", "speed"),
    ("speed not a number", {"speed": "fast"}, 400, "invalid_parameter", "speed"),
    ("bad stream_format", {"stream_format": "ogg"}, 400, "unsupported_stream_format",
     "stream_format"),
    ("unknown field", {"temprature": 0.5}, 400, "unknown_parameter", "temprature"),
    ("bad language", {"language": "xx"}, 400, "unsupported_language", "language"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_errors_have_openai_shape(make_app, engine, case):
    _, changes, status, code, param = case
    client = make_app(engine, max_chars=300).test_client()
    body = {"model": "tts-1", "input": "Hello.", "voice": "alloy", **changes}
    response = client.post("/v1/audio/speech", json={k: v for k, v in body.items()
                                                      if v is not None})
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"], error["type"]) == (code, param,
                                                              "invalid_request_error")
    assert error["message"]
    assert engine.started == 0


def test_non_json_body_and_wrong_method_are_openai_errors(client):
    response = client.post("/v1/audio/speech", data="input=hi", content_type="text/plain")
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    wrong = client.get("/v1/audio/speech")
    assert wrong.status_code == 405 and "error" in wrong.json


def test_not_ready_is_a_server_error_with_retry_after(loading_app):
    app, gate = loading_app
    refused = speech(app.test_client(), response_format="pcm")
    gate.set()
    assert refused.status_code == 503
    assert refused.json["error"]["type"] == "server_error"
    assert refused.json["error"]["code"] == "not_ready"
    assert int(refused.headers["Retry-After"]) >= 1
    assert app.services.wait_ready(10)


def test_voices_list_names_then_aliases(client):
    voices = client.get("/v1/audio/voices").json["voices"]
    assert voices[:2] == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]
    aliases = {v["id"]: v["alias_of"] for v in voices[2:]}
    assert set(aliases) == set(OPENAI_VOICES)
    assert aliases["echo"] == "bob" and aliases["alloy"] == "alice"


def test_models_list(client):
    assert {"id": "tts-1"} in client.get("/v1/audio/models").json["models"]


def test_resolve_voice_name_is_a_pure_decision():
    voices = ["alice", "alloy", "bob"]
    assert resolve_voice_name("alloy", voices, {"alloy": "bob"}, "alice") == "alloy"  # real
    assert resolve_voice_name("Shimmer", voices, {}, "alice") == "alice"
    assert resolve_voice_name("hal", voices, {"hal": "bob"}, "alice") == "bob"  # own alias
    with pytest.raises(ApiError):
        resolve_voice_name("zed", voices, {}, "alice")


def test_alias_setting_is_validated():
    assert Settings.from_env({"VOXLINE_VOICE_ALIASES": "alloy=default, Echo = Studio Sine"}
                             ).alias_map() == {"alloy": "default", "echo": "Studio Sine"}
    with pytest.raises(SettingsError, match="ALIAS=VOICE"):
        Settings.from_env({"VOXLINE_VOICE_ALIASES": "alloy"})


def test_pcm_from_a_22k_engine_is_resampled_to_24k(make_app):
    engine = FakeEngine(n_chunks=10)
    engine.sample_rate = 22050
    response = speech(make_app(engine).test_client(), response_format="pcm")
    samples = np.frombuffer(response.data, "<i2")
    assert response.headers["X-Sample-Rate"] == "24000"
    assert abs(len(samples) - round(10 * engine.chunk_len * 24000 / 22050)) <= 2

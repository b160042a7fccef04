"""Bearer keys: the table of routes, keys and answers; open synthesis and disabled voice
management when no keys are set."""

from __future__ import annotations

import logging

import pytest

from tests.fakes import FakeEngine
from tests.product.conftest import ADMIN_KEY, API_KEY
from voxline.server.auth import KeyRing, bearer_token
from voxline.settings import Settings, SettingsError

SPEAK = ("POST", "/tts_stream", {"text": "Hi.", "format": "pcm"})
WHOLE = ("POST", "/tts", {"text": "Hi."})
OPENAI = ("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "voice": "alloy",
                                       "response_format": "pcm"})
VOICES = ("GET", "/v1/voices", None)
SPEAKERS = ("GET", "/speakers", None)
STUDIO = ("GET", "/studio_speakers", None)

# (description, request, Authorization header, status, error code)
WITH_KEYS = [
    ("synthesis without a key", SPEAK, None, 401, "missing_api_key"),
    ("synthesis with a wrong key", SPEAK, f"Bearer {API_KEY}x", 401, "invalid_api_key"),
    ("synthesis with a basic header", SPEAK, f"Basic {API_KEY}", 401, "missing_api_key"),
    ("synthesis with an empty bearer", SPEAK, "Bearer ", 401, "missing_api_key"),
    ("synthesis with the API key", SPEAK, f"Bearer {API_KEY}", 200, None),
    ("lower-case scheme", SPEAK, f"bearer {API_KEY}", 200, None),
    ("synthesis with the admin key", SPEAK, f"Bearer {ADMIN_KEY}", 200, None),
    ("whole utterance without a key", WHOLE, None, 401, "missing_api_key"),
    ("whole utterance with the API key", WHOLE, f"Bearer {API_KEY}", 200, None),
    ("speakers without a key", SPEAKERS, None, 401, "missing_api_key"),
    ("studio speakers without a key", STUDIO, None, 401, "missing_api_key"),
    ("voice list with the API key", VOICES, f"Bearer {API_KEY}", 403, "admin_key_required"),
    ("voice list without a key", VOICES, None, 401, "missing_api_key"),
    ("voice list with a wrong key", VOICES, "Bearer nope-nope-nope", 401, "invalid_api_key"),
    ("voice list with the admin key", VOICES, f"Bearer {ADMIN_KEY}", 200, None),
    ("health is open", ("GET", "/health", None), None, 200, None),
    ("ready is open", ("GET", "/ready", None), None, 200, None),
    ("metrics are open", ("GET", "/metrics", None), None, 200, None),
]


@pytest.fixture
def keyed_client(make_app):
    return make_app(FakeEngine(), api_keys=(API_KEY,), admin_keys=(ADMIN_KEY,)).test_client()


def call(client, request, authorization):
    method, path, body = request
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize("case", WITH_KEYS, ids=[c[0] for c in WITH_KEYS])
def test_keys_table(keyed_client, case):
    _, request, authorization, status, code = case
    response = call(keyed_client, request, authorization)
    assert response.status_code == status, response.get_data(as_text=True)
    if code is not None:
        assert response.is_json and response.json["error"] == code
        assert response.json["message"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_openai_route_answers_auth_errors_in_openai_shape(keyed_client):
    response = call(keyed_client, OPENAI, None)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_api_key"
    assert response.json["error"]["type"] == "invalid_request_error"
    assert call(keyed_client, OPENAI, f"Bearer {API_KEY}").status_code == 200


def test_no_keys_means_open_synthesis_and_no_voice_management(make_app, caplog):
    caplog.set_level(logging.INFO, logger="voxline.server.app")
    client = make_app(FakeEngine()).test_client()
    assert call(client, SPEAK, None).status_code == 200
    assert call(client, OPENAI, None).status_code == 200
    for authorization in (None, f"Bearer {ADMIN_KEY}"):
        refused = call(client, VOICES, authorization)
        assert refused.status_code == 403
        assert refused.json["error"] == "voice_management_disabled"
    log = caplog.text
    assert "synthesis is open" in log and "voice management (/v1/voices) is off" in log


def test_admin_keys_alone_keep_synthesis_open(make_app):
    client = make_app(FakeEngine(), admin_keys=(ADMIN_KEY,)).test_client()
    assert call(client, SPEAK, None).status_code == 200
    assert call(client, VOICES, f"Bearer {ADMIN_KEY}").status_code == 200


def test_several_keys_each_work():
    ring = KeyRing(["first-key-123", "second-key-456"], ["admin-key-789"])
    for key in ("first-key-123", "second-key-456", "admin-key-789"):
        ring.check("synthesis", f"Bearer {key}")
    ring.check("admin", "Bearer admin-key-789")


@pytest.mark.parametrize("header, token", [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    ("", None), (None, None), ("abc", None),
])
def test_bearer_token_parsing(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("env", [
    {"VOXLINE_API_KEYS": "short"},
    {"VOXLINE_ADMIN_KEYS": "has space inside"},
])
def test_weak_keys_stop_the_server_at_startup(env):
    with pytest.raises(SettingsError, match="at least 8 characters"):
        Settings.from_env(env)


def test_keys_from_the_environment_are_split_on_commas():
    settings = Settings.from_env({"VOXLINE_API_KEYS": "key-one-111, key-two-222,",
                                  "VOXLINE_ADMIN_KEYS": "admin-key-333"})
    assert settings.api_keys == ("key-one-111", "key-two-222")
    assert settings.admin_keys == ("admin-key-333",)

"""API keys never reach the logs: `?api_key=` values and credential headers are redacted in
what a real gunicorn writes (voxline.logredact), over HTTP and on the websocket route."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from voxline.logredact import REDACTED, redact, redact_atoms

ACCEPTED = "acceptedKey-7f3a9c51"
REFUSED = "refusedKey-b81d44e0"
QUERY_ONLY = "queryOnlyKey-2c9e6a17"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("GET /s?api_key=abc HTTP/1.1", f"GET /s?api_key={REDACTED} HTTP/1.1"),
        ("GET /s?x=1&api_key=abc&y=2 HTTP/1.1", f"GET /s?x=1&api_key={REDACTED}&y=2 HTTP/1.1"),
        ("/s?API_KEY=abc#frag", f"/s?API_KEY={REDACTED}#frag"),
        ("/s?api%5Fkey=abc", f"/s?api%5Fkey={REDACTED}"),
        ('"GET /s?api_key=a%20b" 401', f'"GET /s?api_key={REDACTED}" 401'),
        ("Authorization: Bearer sk-12345678", f"Authorization: Bearer {REDACTED}"),
        ("send 'Authorization: Bearer <key>'", "send 'Authorization: Bearer <key>'"),
        ("no secret here: my_api_keys=1", "no secret here: my_api_keys=1"),
    ],
)
def test_redact_table(text, want):
    assert redact(text) == want


def test_atoms_hide_credential_headers_and_query_keys():
    atoms = {
        "r": "GET /v1/audio/speech/stream?api_key=abc HTTP/1.1",
        "q": "api_key=abc",
        "{authorization}i": "Bearer abc",
        "{http_authorization}e": "Bearer abc",
        "{x-request-id}o": "rid-1",
        "B": 12,
    }
    assert redact_atoms(atoms) == {
        "r": f"GET /v1/audio/speech/stream?api_key={REDACTED} HTTP/1.1",
        "q": f"api_key={REDACTED}",
        "{authorization}i": REDACTED,
        "{http_authorization}e": REDACTED,
        "{x-request-id}o": "rid-1",
        "B": 12,
    }


def _ws(url: str, query: str, **kwargs):
    ws_url = url.replace("http", "ws", 1) + "/v1/audio/speech/stream" + query
    return connect(ws_url, open_timeout=10, close_timeout=2, **kwargs)


def _log_after(server, marker: str, timeout: float = 5.0) -> str:
    """The whole log once a request for `marker` has been logged (access lines are written
    after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text(errors="replace")
        if marker in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.slow
def test_keys_in_queries_and_headers_never_reach_the_gunicorn_log(spawn_server):
    server = spawn_server(VOXLINE_ENGINE="tone", VOXLINE_API_KEYS=ACCEPTED)
    # HTTP: a refused key, an accepted header with a key in the query too.
    refused = requests.get(
        server.url + "/tts_stream", params={"text": "Hi.", "api_key": REFUSED}, timeout=30
    )
    assert refused.status_code in (400, 401)
    accepted = requests.get(
        server.url + "/speakers",
        params={"api_key": QUERY_ONLY},
        headers={"Authorization": f"Bearer {ACCEPTED}"},
        timeout=30,
    )
    assert accepted.status_code == 200
    # Websocket: `?api_key=` is how browsers authenticate.
    with pytest.raises(InvalidStatus) as refusal:
        with _ws(server.url, f"?api_key={REFUSED}"):
            pass
    assert refusal.value.response.status_code == 401
    with _ws(server.url, f"?api_key={ACCEPTED}") as ws:
        assert '"session.created"' in ws.recv(timeout=10)
    with _ws(server.url, "", additional_headers={"Authorization": f"Bearer {ACCEPTED}"}) as ws:
        assert '"session.created"' in ws.recv(timeout=10)
    requests.get(server.url + "/health?marker=done", timeout=10)

    log = _log_after(server, "marker=done")
    for secret in (ACCEPTED, REFUSED, QUERY_ONLY):
        assert secret not in log
    # The requests were logged, with their keys redacted (gunicorn writes no access line for
    # an upgraded websocket, only for the refused handshake).
    assert f'"GET /tts_stream?text=Hi.&api_key={REDACTED} HTTP/1.1" 401' in log, log[-3000:]
    assert f'"GET /speakers?api_key={REDACTED} HTTP/1.1" 200' in log
    assert f'"GET /v1/audio/speech/stream?api_key={REDACTED} HTTP/1.1" 401' in log

"""Issue 16's defects, each reproduced through a real websocket: every door shares the core's
guards (one decoder, one set of codes), and no message can break a session."""

from __future__ import annotations

import json

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from tests.fakes import FakeEngine


def test_deep_nesting_is_an_error_and_the_session_lives(serve):
    client = serve(FakeEngine(chunk_len=480)).connect()
    client.recv()
    for depth in (10, 5000, 20000):
        text = "[" * depth + "]" * depth
        client.ws.send('{"type": "input_text.append", "text": ' + text + "}")
        error = client.recv()
        assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
    client.send("input_text.append", text="Still here.")
    client.send("input_text.end")
    done = client.until("speech.audio.done")[-1]
    assert done["segments"][0]["text"] == "Still here."


@pytest.mark.parametrize("raw", [
    '{"type": "input_text.append", "text": "\\ud800"}',
    '{"type": "input_text.append", "text": "ok", "\\udfff": 1}',
])
def test_lone_surrogates_are_invalid_encoding_as_over_http(serve, raw):
    client = serve(FakeEngine(chunk_len=480)).connect()
    client.recv()
    client.ws.send(raw)
    assert client.recv()["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_numbers_must_be_finite(serve, number):
    client = serve(FakeEngine(chunk_len=480)).connect()
    client.recv()
    client.ws.send('{"type": "session.update", "session": {"speed": ' + number + "}}")
    assert client.recv()["error"]["code"] == "invalid_json"


def test_a_segment_with_nothing_to_say_is_skipped_silently(serve):
    engine = FakeEngine(chunk_len=480)
    client = serve(engine).connect()
    client.recv()
    client.send("input_text.append", text="… ", context_id="dots")
    client.send("input_text.end", context_id="dots")
    done = client.until("speech.audio.done", context_id="dots")
    assert [m["type"] for m in done] == ["speech.audio.done"]  # no error, no audio, no mark
    assert done[-1]["segments"] == [] and done[-1]["audio_ms"] == 0
    client.send("input_text.append", text="?! Hello there.")
    client.send("input_text.end")
    messages = client.until("speech.audio.done")
    assert [m for m in messages if m["type"] == "error"] == []
    segments = [m for m in messages if m["type"] == "speech.segment"]
    assert [s["text"] for s in segments] == ["Hello there."]
    assert engine.started == 1


class BrokenAfterStart(FakeEngine):
    """An engine whose language list fails once the server is up: an unexpected error
    inside session setup, where no domain error applies."""

    broken = False

    @property
    def languages(self):
        if self.broken:
            raise RuntimeError("synthetic internal failure")
        return ("en",)


def test_an_unexpected_error_is_an_error_message_and_a_1011_close(serve, caplog):
    engine = BrokenAfterStart(chunk_len=480)
    server = serve(engine)
    engine.broken = True
    client = server.connect()
    message = client.recv()
    assert message["type"] == "error" and message["error"]["code"] == "internal_error"
    with pytest.raises(ConnectionClosed):
        client.recv(timeout=5)
    assert client.ws.close_code == 1011
    assert "synthetic internal failure" in caplog.text  # logged with its traceback
    engine.broken = False
    again = server.connect()  # the server goes on serving
    assert again.recv()["type"] == "session.created"


@pytest.mark.parametrize("route,body", [
    ("/tts_stream", {"text": "...!?"}),
    ("/tts", {"text": "…"}),
    ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "?!"}),
])
def test_text_with_nothing_to_say_is_a_400_on_every_route(make_app, route, body):
    client = make_app(FakeEngine()).test_client()
    response = client.post(route, json=body)
    assert response.status_code == 400
    error = response.json["error"]
    assert (error["code"] if isinstance(error, dict) else error) == "no_speakable_text"


def test_http_and_session_decode_the_same_message_the_same_way(make_app, serve):
    deep = '{"text": ' + "[" * 50 + "]" * 50 + "}"
    client = make_app(FakeEngine()).test_client()
    http = client.post("/tts_stream", data=deep, content_type="application/json")
    assert http.status_code == 400 and http.json["error"] == "invalid_json"
    ws = serve(FakeEngine(chunk_len=480)).connect()
    ws.recv()
    ws.ws.send(deep.replace('{"text"', '{"type": "input_text.append", "text"'))
    assert ws.recv()["error"]["code"] == http.json["error"]
    assert np.isfinite(json.loads('{"x": 1.5}')["x"])

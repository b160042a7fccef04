"""The HTTP API with a fake engine injected through the factory."""

from __future__ import annotations

import io
import threading
import time
import wave

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.waiting import wait_until
from voxline.audio import float_to_int16


def expected_int16(engine: FakeEngine, voice: str = "alice") -> np.ndarray:
    return float_to_int16(engine.expected(engine.builtin_voices()[voice]))


BAD_REQUESTS = [
    # (description, kwargs for client.open, status, error code)
    ("malformed json", dict(method="POST", data="{not json", content_type="application/json"),
     400, "invalid_json"),
    ("json array", dict(method="POST", json=["hi"]), 400, "invalid_json"),
    ("wrong content type", dict(method="POST", data="text=hi", content_type="text/plain"),
     415, "unsupported_media_type"),
    ("missing text", dict(method="POST", json={}), 400, "missing_text"),
    ("empty text", dict(method="POST", json={"text": ""}), 400, "missing_text"),
    ("whitespace text", dict(method="POST", json={"text": "  \n\t "}), 400, "missing_text"),
    ("text not a string", dict(method="POST", json={"text": 5}), 400, "invalid_parameter"),
    ("text over limit", dict(method="POST", json={"text": "a" * 201}), 413, "text_too_long"),
    ("unknown speaker", dict(method="POST", json={"text": "hi", "speaker": "zed"}),
     404, "unknown_speaker"),
    ("unsupported language", dict(method="POST", json={"text": "hi", "language": "xx"}),
     400, "unsupported_language"),
    ("temperature too high", dict(method="POST", json={"text": "hi", "temperature": 9}),
     400, "invalid_parameter"),
    ("top_k not integer", dict(method="POST", json={"text": "hi", "top_k": 2.5}),
     400, "invalid_parameter"),
    ("top_k bool", dict(method="POST", json={"text": "hi", "top_k": True}),
     400, "invalid_parameter"),
    ("speed as string in json", dict(method="POST", json={"text": "hi", "speed": "fast"}),
     400, "invalid_parameter"),
    ("unknown parameter", dict(method="POST", json={"text": "hi", "sped": 1.0}),
     400, "unknown_parameter"),
    ("unknown format", dict(method="POST", json={"text": "hi", "format": "aiff"}),
     400, "unsupported_format"),
    ("bad rate", dict(method="POST", json={"text": "hi", "sample_rate": 12345}),
     400, "unsupported_format"),
    ("query: not a number", dict(method="GET", raw="text=hi&top_p=abc"),
     400, "invalid_parameter"),
    ("query: nan", dict(method="GET", raw="text=hi&speed=nan"),
     400, "invalid_parameter"),
    ("query: invalid utf-8", dict(method="GET", raw="text=caf%E9"),
     400, "invalid_encoding"),
    ("query: control character", dict(method="GET", raw="text=a%00b"),
     400, "invalid_parameter"),
    ("query: missing text", dict(method="GET", raw="speaker=alice"),
     400, "missing_text"),
]


@pytest.mark.parametrize("route", ["/tts_stream", "/tts"])
@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_json_error_and_server_keeps_serving(make_app, engine, route, case):
    _, kwargs, status, code = case
    client = make_app(engine, max_chars=200).test_client()
    if route == "/tts" and kwargs["method"] == "GET":
        status, code = 405, "method_not_allowed"
    raw = kwargs.pop("raw", None)
    response = client.open(f"{route}?{raw}" if raw else route, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["error"] == code
    assert response.json["message"]
    assert engine.started == 0
    ok = client.post("/tts_stream", json={"text": "still serving"})
    assert ok.status_code == 200 and len(ok.data) == 2 * engine.n_chunks * engine.chunk_len


def test_query_string_with_utf8_and_plus_signs(client, engine):
    response = client.get("/tts_stream?text=Gr%C3%BC%C3%9Fe+aus+K%C3%B6ln&format=pcm")
    assert response.status_code == 200
    assert len(response.data) == 2 * engine.n_chunks * engine.chunk_len


def test_l16_is_big_endian_with_the_engine_rate(client, engine):
    response = client.post("/tts_stream", json={"text": "Hello."})
    assert response.headers["Content-Type"] == "audio/L16; rate=24000; channels=1"
    samples = np.frombuffer(response.data, dtype=">i2")
    expected = expected_int16(engine)
    np.testing.assert_array_equal(samples, expected)
    assert not np.array_equal(np.frombuffer(response.data, dtype="<i2"), expected)


def test_pcm_is_little_endian(client, engine):
    response = client.post("/tts_stream", json={"text": "Hello.", "format": "pcm"})
    assert response.headers["Content-Type"].startswith("audio/pcm")
    np.testing.assert_array_equal(np.frombuffer(response.data, dtype="<i2"),
                                  expected_int16(engine))


def test_streamed_wav_parses_and_matches(client, engine):
    response = client.get("/tts_stream?text=Hello.&format=wav&speaker=bob")
    assert response.headers["Content-Type"] == "audio/wav"
    body = response.data
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    # Streaming WAV: sizes unknown when the header went out; the samples follow it.
    expected = expected_int16(engine, "bob")
    np.testing.assert_array_equal(np.frombuffer(body[44:], dtype="<i2"), expected)


def test_whole_wav_from_tts_has_exact_sizes(client, engine):
    response = client.post("/tts", json={"text": "Hello.", "speaker": "bob"})
    with wave.open(io.BytesIO(response.data)) as wav:
        assert wav.getframerate() == 24000 and wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(frames, expected_int16(engine, "bob"))


def call_wsgi(app, **builder_args):
    """Call the WSGI app directly: returns (status, headers, body iterator), nothing pulled."""
    from werkzeug.test import EnvironBuilder

    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    environ = EnvironBuilder(**builder_args).get_environ()
    body = app(environ, start_response)
    return started, body


def test_headers_wait_for_the_first_audio_then_audio_flows(make_app, engine):
    """Nothing is sent before the first chunk exists (so a failure until then can still be a
    proper status); then headers and audio go out chunk by chunk as they are made."""
    engine.permits = threading.Semaphore(0)
    app = make_app(engine)
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(
        call=call_wsgi(app, method="POST", path="/tts_stream",
                       json={"text": "Hello.", "format": "pcm"})))
    caller.start()
    time.sleep(0.3)
    assert "call" not in result and engine.chunks_made == 0  # no audio, no headers
    engine.permits.release()
    caller.join(5)
    started, response = result["call"]
    assert started["status"].startswith("200")
    headers = started["headers"]
    for name in ("Content-Type", "X-Sample-Rate", "X-Request-Id", "X-Accel-Buffering"):
        assert headers.get(name)
    assert headers["Cache-Control"] == "no-cache"
    body = iter(response)
    for i in range(engine.n_chunks):
        part = next(body)
        assert len(part) == 2 * engine.chunk_len
        assert engine.chunks_made == i + 1  # delivered while the next is not yet made
        engine.permits.release()  # the engine may make exactly one more chunk
    assert b"".join(body) == b""
    response.close()


def test_client_disconnect_closes_the_engine_generator(make_app, engine):
    engine.n_chunks = 50
    engine.permits = threading.Semaphore(1)
    app = make_app(engine)
    _, body = call_wsgi(app, method="POST", path="/tts_stream", json={"text": "Hello."})
    next(iter(body))
    body.close()  # what the WSGI server does when the client goes away
    engine.permits.release()  # let the engine finish the chunk it is waiting to make
    wait_until(lambda: engine.closed == 1)
    assert engine.chunks_made <= 2  # stopped within one chunk
    engine.permits = None
    assert app.test_client().post("/tts_stream", json={"text": "Next."}).status_code == 200


def test_queue_full_answers_503_with_retry_after(make_app, engine):
    app = make_app(engine, max_queue=1, max_active=1)
    engine.gate = threading.Event()
    results: list[int] = []

    def call() -> None:
        results.append(app.test_client().post("/tts", json={"text": "Hi.", "cache": False})
                       .status_code)

    holders = [threading.Thread(target=call) for _ in range(2)]  # one runs, one waits
    for t in holders:
        t.start()
    scheduler = app.services.scheduler
    # Both are queued at first; the scheduler's loop then admits one (CI once saw 2 waiting).
    # 30 s: a loaded machine starts threads slowly.
    wait_until(lambda: (scheduler.active, scheduler.depth) == (1, 1), 30, "one running, one queued")
    refused = app.test_client().post("/tts", json={"text": "Hi.", "cache": False})
    assert refused.status_code == 503
    assert refused.json["error"] == "queue_full"
    assert int(refused.headers["Retry-After"]) >= 1
    engine.gate.set()
    for t in holders:
        t.join(10)
    assert results == [200, 200]


def test_synthesis_error_after_audio_aborts_the_stream(client, engine):
    """A failure after the first byte must not look like a clean end: the body raises into
    the WSGI server (which then cuts the connection), and the server keeps serving."""
    from voxline.server.body import StreamAborted

    engine.fail_after = 1
    response = client.post("/tts_stream", json={"text": "Hello.", "format": "pcm"})
    assert response.status_code == 200
    with pytest.raises(StreamAborted):
        response.get_data()
    engine.fail_after = None
    assert client.post("/tts", json={"text": "again"}).status_code == 200


@pytest.mark.parametrize("route", ["/tts_stream", "/tts"])
def test_synthesis_error_before_audio_is_a_500_with_json(client, engine, route):
    engine.fail_after = 0
    response = client.post(route, json={"text": "Hello.", "format": "pcm"})
    assert response.status_code == 500
    assert response.json["error"] == "synthesis_failed"


def test_no_audio_at_all_is_never_an_empty_200(client, engine):
    engine.n_chunks = 0
    response = client.post("/tts_stream", json={"text": "Hello.", "format": "pcm"})
    assert response.status_code == 500 and response.json["error"] == "synthesis_failed"


def test_long_text_is_split_into_sentences_streamed_in_order(client, engine):
    text = " ".join(f"Sentence number {i} is here." for i in range(30))  # > 250 chars
    response = client.post("/tts_stream", json={"text": text, "format": "pcm"})
    body = response.data  # the test client pulls the stream lazily
    assert response.status_code == 200
    assert engine.started == engine.finished == 30
    one = expected_int16(engine).tobytes()
    assert body == one * 30


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["X-Request-Id"] not in ("", "bad id with spaces")


def test_metadata_routes(client):
    assert client.get("/speakers").json["speakers"] == ["alice", "bob"]
    assert client.get("/languages").json["languages"] == ["en", "de"]
    health = client.get("/health").json
    assert health["engine"] == "fake" and health["ready"] is True
    assert client.get("/ready").status_code == 200
    assert client.get("/nope").json["error"] == "not_found"


def test_not_ready_until_loaded(loading_app):
    app, gate = loading_app
    client = app.test_client()
    assert client.get("/ready").status_code == 503
    refused = client.post("/tts_stream", json={"text": "hi"})
    assert refused.status_code == 503 and refused.json["error"] == "not_ready"
    gate.set()
    assert app.services.wait_ready(10)
    assert client.get("/ready").status_code == 200


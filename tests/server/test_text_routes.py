"""The front end as a stage of every request: preview, lexicons over HTTP, SSML breaks as exact
silence, and the phrase cache keyed by what is spoken."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np

from tests.fakes import FakeEngine

ADMIN = "admin-key-123456"
PLS = b"""<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme><grapheme>Voxline</grapheme><alias>vox line</alias></lexeme>
</lexicon>"""


def admin(client, method, path, **kwargs):
    return client.open(path, method=method, headers={"Authorization": f"Bearer {ADMIN}"},
                       **kwargs)


def test_preview_says_what_will_be_spoken_with_spans_into_the_text(make_app):
    client = make_app(FakeEngine()).test_client()
    text = "It costs $1,249.50 today."
    body = client.post("/v1/text/normalize", json={"text": text}).json
    assert "one thousand two hundred" in body["spoken"] and "$" not in body["spoken"]
    for span in body["spans"]:
        start, end = span["source"]
        assert 0 <= start < end <= len(text)
    sources = {text[s["source"][0]:s["source"][1]] for s in body["spans"]}
    assert "$1,249.50" in sources and "today." in sources


def test_preview_can_turn_normalisation_off_and_refuses_bad_ssml(make_app):
    client = make_app(FakeEngine()).test_client()
    raw = client.post("/v1/text/normalize", json={"text": "$5", "normalize": False}).json
    assert raw["spoken"] == "$5"
    bad = client.post("/v1/text/normalize", json={"text": "<speak><s>hi</speak>",
                                                  "text_type": "ssml"})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_ssml"
    assert "line" in bad.json["message"] and "column" in bad.json["message"]


def test_lexicons_over_http_change_what_is_spoken_at_once(make_app):
    client = make_app(FakeEngine(), admin_keys=(ADMIN,)).test_client()
    before = client.post("/v1/text/normalize", json={"text": "Welcome to Voxline."}).json
    assert "Voxline" in before["spoken"]
    assert client.put("/v1/lexicons/brand", data=PLS).status_code == 401
    assert admin(client, "PUT", "/v1/lexicons/brand", data=PLS).status_code == 201
    after = client.post("/v1/text/normalize", json={"text": "Welcome to Voxline."}).json
    assert "vox line" in after["spoken"]
    listed = admin(client, "GET", "/v1/lexicons").json["lexicons"]
    assert listed == [{"name": "brand", "language": "en", "lexemes": 1}]
    assert admin(client, "GET", "/v1/lexicons/brand").data == PLS
    bad = admin(client, "PUT", "/v1/lexicons/brand", data=b"<lexicon")
    assert bad.status_code == 400 and bad.json["error"] == "invalid_lexicon"
    assert admin(client, "GET", "/v1/lexicons/brand").data == PLS  # nothing half-applied
    assert admin(client, "DELETE", "/v1/lexicons/brand").status_code == 200
    assert admin(client, "GET", "/v1/lexicons/brand").status_code == 404


def test_a_lexicon_change_is_heard_at_once_through_the_phrase_cache(make_app):
    engine = FakeEngine()
    client = make_app(engine, admin_keys=(ADMIN,)).test_client()
    speak = {"text": "Welcome to Voxline.", "format": "pcm"}
    first = client.post("/tts", json=speak)
    assert client.post("/tts", json=speak).headers["X-Voxline-Cache"] == "hit"
    admin(client, "PUT", "/v1/lexicons/brand", data=PLS)
    changed = client.post("/tts", json=speak)
    assert first.status_code == changed.status_code == 200
    assert changed.headers["X-Voxline-Cache"] == "miss"


def test_ssml_breaks_are_exact_silence_in_the_audio(make_app):
    engine = FakeEngine(n_chunks=1, chunk_len=2400)
    client = make_app(engine).test_client()
    ssml = '<speak>One.<break time="250ms"/>Two.<break time="1s"/></speak>'
    response = client.post("/tts", json={"text": ssml, "text_type": "ssml", "cache": False})
    assert response.status_code == 200
    with wave.open(io.BytesIO(response.data)) as wav:
        assert wav.getframerate() == 24000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    # line, 250 ms (6000 samples) of zeros, line, 1 s (24000 samples) of zeros
    assert len(samples) == 2400 + 6000 + 2400 + 24000
    assert not samples[2400:8400].any() and not samples[-24000:].any()
    assert samples[8400:10800].any()


def test_phonemes_are_refused_on_an_engine_that_takes_none(make_app):
    client = make_app(FakeEngine()).test_client()
    ssml = '<speak><phoneme alphabet="ipa" ph="təˈmeɪtoʊ">tomato</phoneme></speak>'
    response = client.post("/tts", json={"text": ssml, "text_type": "ssml"})
    assert response.status_code == 400 and response.json["error"] == "unsupported_ssml"


def test_tts_with_timestamps_answers_words_that_slice_the_text_and_caches_them(make_app):
    client = make_app(FakeEngine(n_chunks=2, chunk_len=12000)).test_client()
    text = "Pay $5 by Friday."
    body = {"text": text, "format": "pcm", "timestamps": True}
    first = client.post("/tts", json=body)
    assert first.status_code == 200 and first.headers["X-Voxline-Cache"] == "miss"
    answer = first.json
    audio = base64.b64decode(answer["audio"])
    assert answer["format"] == "pcm" and len(audio) == 2 * 24000
    sources = [text[w["text_start"]:w["text_end"]] for w in answer["words"]]
    assert sources[0] == "Pay" and "$5" in sources and sources[-1] == "Friday."
    assert all(0 <= w["start_ms"] <= w["end_ms"] <= 1000 for w in answer["words"])
    again = client.post("/tts", json=body)
    assert again.headers["X-Voxline-Cache"] == "hit" and again.json == answer
    plain = client.post("/tts", json={**body, "timestamps": False})
    assert plain.headers["X-Voxline-Cache"] == "miss"  # a file without words is another key

"""The FastAGI server serving a real Asterisk 22: ten concurrent calls, then a graceful stop."""

from __future__ import annotations

import threading

import pytest
from calls import finish_call, hostport, start_call
from test_asterisk_agi import LONG_SENTENCE, assert_heard_up_to_endpos

from telephony.fastagi import FastAgiServer
from telephony.voxagi.config import Settings

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

TEXTS = [f"Caller number {n}, your order {n * 7 + 3} ships on day {n + 2}." for n in range(1, 11)]


@pytest.fixture
def fastagi(asterisk, tap, call_id):
    """A FastAGI server on a free loopback port that uses the tapped TTS server."""
    # Ten uncached prompts at once queue up in one CPU server: allow for the wait.
    settings = Settings(
        url=tap.url,
        cache_dir=str(asterisk.path("prompts", call_id)),
        first_byte_timeout=30,
        timeout=60,
    )
    server = FastAgiServer(("127.0.0.1", 0), settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop(grace=1)
    thread.join(5)


def test_ten_concurrent_calls_each_hear_their_own_prompt(asterisk, tap, fastagi, call_id):
    address = hostport(fastagi.server_address)
    ids = [f"{call_id}-{n}" for n in range(len(TEXTS))]
    recs = [
        start_call(
            asterisk,
            test_id,
            "fastagi",
            "record",
            {"VOXLINE_TEXT": text, "VOXLINE_FASTAGI": address},
        )
        for test_id, text in zip(ids, TEXTS, strict=True)
    ]
    results = [finish_call(asterisk, test_id, rec) for test_id, rec in zip(ids, recs, strict=True)]
    served = {r.query["text"]: r.audio for r in tap.tts_requests()}
    assert sorted(served) == sorted(TEXTS)
    for text, result in zip(TEXTS, results, strict=True):
        assert result["status"] == "OK", result.values
        assert len(served[text]) > 4000
        assert result.recording == served[text], text
        assert result["heard"] == text
    assert fastagi.active_calls == 0


def test_channel_variables_configure_the_call(asterisk, tap, fastagi, call_id):
    variables = {
        "VOXLINE_TEXT": "Hello.",
        "VOXLINE_FASTAGI": hostport(fastagi.server_address),
        "VOXLINE_TTS_VOICE": "joe",
        "VOXLINE_TTS_PARAMS": "speed=1.0",
    }
    good = finish_call(
        asterisk, call_id, start_call(asterisk, call_id, "fastagi", "record", variables)
    )
    assert good["status"] == "OK", good.values
    (request,) = tap.tts_requests()
    assert (request.query["speaker"], request.query["speed"]) == ("joe", 1.0)

    variables["VOXLINE_TTS_TIMEOUT"] = "soon"
    bad_id = call_id + "b"
    bad = finish_call(
        asterisk, bad_id, start_call(asterisk, bad_id, "fastagi", "record", variables)
    )
    assert bad["status"] == "ERROR"
    assert bad["error"].startswith("config: timeout")


def test_dtmf_barge_in_sets_the_text_heard(asterisk, tap, fastagi, call_id):
    variables = {"VOXLINE_TEXT": LONG_SENTENCE, "VOXLINE_FASTAGI": hostport(fastagi.server_address)}
    # Warm the cache first so that playback starts at once and the key press lands mid-prompt.
    warm = finish_call(
        asterisk, call_id + "w", start_call(asterisk, call_id + "w", "fastagi", "record", variables)
    )
    assert warm["status"] == "OK" and warm["heard"] == LONG_SENTENCE, warm.values
    variables.update({"DTMF_AFTER": "1.5", "DTMF_DIGIT": "3"})
    result = finish_call(
        asterisk, call_id, start_call(asterisk, call_id, "fastagi", "bargein", variables)
    )
    assert (result["status"], result["digit"]) == ("INTERRUPTED", "3"), result.values
    (served,) = tap.tts_requests()
    assert_heard_up_to_endpos(result, LONG_SENTENCE, served.words)

"""What a caller heard: the pure function, and the AGI outcome on a barge-in (fake Asterisk)."""

from __future__ import annotations

import base64
import json

import pytest
from fake_asterisk import FakeAsterisk, default_responder
from stub_tts import tone_words

from telephony.voxagi.client import TtsError, build_timed_body, read_timed
from telephony.voxagi.config import Settings
from telephony.voxagi.heard import heard_end, heard_text
from telephony.voxagi.speak import run_call
from telephony.voxagi.text import split_sentences

WORDS = tone_words("Hello there, caller.")  # 60 ms a character: ends at 300, 660, 1140 ms


@pytest.mark.parametrize(
    "position_ms, end",
    [(0, 0), (299.9, 0), (300, 5), (659, 5), (660, 11), (1139, 11), (1140, 19), (10**6, 19)],
)
def test_heard_end_is_the_end_of_the_last_word_finished(position_ms, end):
    assert heard_end(WORDS, position_ms) == end


def test_heard_end_of_no_words():
    assert heard_end([], 5000) == 0


TEXT = "  Hello there,\n caller.   Your   call matters.  "
SENTENCES = ["Hello there, caller.", "Your call matters."]


@pytest.mark.parametrize(
    "played, position_ms, heard",
    [
        (0, 0, ""),
        (0, 310, "  Hello"),
        (0, 700, "  Hello there"),  # the comma after a word is not part of it
        (0, 5000, "  Hello there,\n caller"),
        (1, 0, "  Hello there,\n caller."),  # a whole sentence played, the next not begun
        (1, 300, "  Hello there,\n caller.   Your"),
    ],
)
def test_heard_text_maps_back_to_the_text_as_sent(played, position_ms, heard):
    assert split_sentences(TEXT) == SENTENCES
    words = tone_words(SENTENCES[played])
    assert heard_text(TEXT, SENTENCES, played, words, position_ms) == heard
    assert TEXT.startswith(heard)


def test_heard_text_when_everything_played_is_the_whole_text():
    assert heard_text(TEXT, SENTENCES, 2) == TEXT


def test_heard_text_across_a_hard_cut_word():
    """A word longer than max_sentence_chars is cut without a space in the text."""
    text = "A" * 30 + " end."
    sentences = split_sentences(text, 20)
    assert sentences == ["A" * 20, "A" * 10 + " end."]
    assert heard_text(text, sentences, 1) == "A" * 20
    words = tone_words(sentences[1])
    assert heard_text(text, sentences, 1, words, 600) == "A" * 30
    assert heard_text(text, sentences, 1, words, 840) == "A" * 30 + " end"


def interrupting_at(endpos_by_play: list[int], digit: str = "5"):
    """A fake Asterisk that plays whole files and is interrupted at the last given endpos."""
    plays: list[str] = []

    def respond(command: str) -> list[str]:
        if command.startswith("STREAM FILE") and "im-sorry" not in command:
            plays.append(command)
            endpos = endpos_by_play[len(plays) - 1]
            if len(plays) == len(endpos_by_play):
                return [f"200 result={ord(digit)} endpos={endpos}"]
            return [f"200 result=0 endpos={endpos}"]
        return default_responder(command)

    return respond


def test_barge_in_mid_sentence_reports_the_words_heard(stub, tmp_path):
    text = "Thank you for calling. Your call matters to us a lot."
    settings = Settings(url=stub.url, cache_dir=str(tmp_path))
    first, second = split_sentences(text)
    # First sentence played whole (60 ms a character at 8 kHz), the second stopped at 1000 ms:
    # "Your" ends at 240 ms, "call" at 540 ms, "matters" at 1020 ms.
    fake = FakeAsterisk(respond=interrupting_at([len(first) * 480, 8000]))
    try:
        outcome = run_call(fake.channel(), settings, text, {})
    finally:
        fake.close()
    assert (outcome.status, outcome.digit) == ("INTERRUPTED", "5")
    variables = fake.variables()
    assert variables["VOXLINE_HEARD"] == "Thank you for calling. Your call"
    assert variables["VOXLINE_HEARD_MS"] == str(len(first) * 60 + 1000)
    assert len(fake.played()) == 2


def test_barge_in_before_the_first_word_ends_hears_nothing(stub, tmp_path):
    settings = Settings(url=stub.url, cache_dir=str(tmp_path))
    fake = FakeAsterisk(respond=interrupting_at([100]))
    try:
        run_call(fake.channel(), settings, "Welcome to the line.", {})
    finally:
        fake.close()
    assert fake.variables()["VOXLINE_HEARD"] == ""


def test_failure_after_a_sentence_reports_that_sentence_heard(stub, tmp_path):
    settings = Settings(url=stub.url, cache_dir=str(tmp_path), fallback="im-sorry")
    original = stub.handle

    def fail_second(handler) -> None:
        stub.mode = "error" if stub.requests else "ok"
        original(handler)

    stub.handle = fail_second
    fake = FakeAsterisk()
    try:
        run_call(fake.channel(), settings, "The first sentence is here. The second fails.", {})
    finally:
        fake.close()
    variables = fake.variables()
    assert variables["VOXLINE_STATUS"] == "ERROR"
    assert variables["VOXLINE_ERROR"].startswith("http_503")
    assert variables["VOXLINE_HEARD"] == "The first sentence is here."


def test_cached_prompt_keeps_its_words(stub, tmp_path):
    """A second call plays from the cache and still knows the words."""
    settings = Settings(url=stub.url, cache_dir=str(tmp_path))
    for _ in range(2):
        fake = FakeAsterisk(respond=interrupting_at([5000]))
        try:
            run_call(fake.channel(), settings, "Cached prompts know words.", {})
        finally:
            fake.close()
        # 5000 samples = 625 ms: "Cached" ends at 360 ms, "prompts" at 840 ms.
        assert fake.variables()["VOXLINE_HEARD"] == "Cached"
    assert len(stub.requests) == 1


def test_timed_answer_is_checked():
    audio = base64.b64encode(b"\xff" * 80).decode()
    good = {"audio": audio, "format": "ulaw", "sample_rate": 8000, "words": WORDS}
    assert read_timed([json.dumps(good).encode()]) == (b"\xff" * 80, WORDS)
    bad = [
        b"<html>",
        json.dumps({**good, "audio": "not base64!"}).encode(),
        json.dumps({"audio": audio}).encode(),
        json.dumps({**good, "words": [{"word": "x"}]}).encode(),
        json.dumps({**good, "audio": ""}).encode(),
    ]
    for body in bad:
        with pytest.raises(TtsError) as info:
            read_timed([body[:7], body[7:]])
        assert info.value.reason == "bad_audio", body


def test_parameters_reach_the_timed_request_as_json_values():
    body = json.loads(
        build_timed_body("Hi.", "joe", "en", "speed=1.1&seed=3&cache=false", "ulaw", 8000)
    )
    assert body == {
        "text": "Hi.",
        "language": "en",
        "format": "ulaw",
        "sample_rate": 8000,
        "timestamps": True,
        "speaker": "joe",
        "speed": 1.1,
        "seed": 3,
        "cache": False,
    }

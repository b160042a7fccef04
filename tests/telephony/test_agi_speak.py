"""Prompt logic without Asterisk: cache, pipelining, fallbacks, settings and sentence splitting."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fake_asterisk import FakeAsterisk, default_responder
from stub_tts import tone_ulaw

from telephony.voxagi.cache import EXTENSION, WORDS_EXTENSION, Prompt, PromptCache, prompt_key
from telephony.voxagi.config import (
    ConfigError,
    Settings,
    from_environment,
    read_config_file,
    with_channel,
)
from telephony.voxagi.speak import run_call
from telephony.voxagi.text import split_sentences


def call(fake: FakeAsterisk, settings: Settings, text: str, **overrides: str):
    """Run one call through the shared logic and return its outcome."""
    channel = fake.channel()
    return run_call(channel, settings, text, overrides)


def test_prompt_is_fetched_as_ulaw_cached_and_replayed(stub, tmp_path):
    settings = Settings(url=stub.url, cache_dir=str(tmp_path))
    fake = FakeAsterisk()
    try:
        outcome = call(fake, settings, "Hello there.")
    finally:
        fake.close()
    assert outcome.status == "OK"
    assert stub.requests == [
        {
            "text": "Hello there.",
            "language": "en",
            "format": "ulaw",
            "sample_rate": 8000,
            "timestamps": True,
        }
    ]
    (played,) = fake.played()
    expected = tone_ulaw("Hello there.")
    assert Path(played + EXTENSION).read_bytes() == expected
    assert fake.variables() == {
        "VOXLINE_STATUS": "OK",
        "VOXLINE_DIGIT": "",
        "VOXLINE_ERROR": "",
        "VOXLINE_HEARD": "Hello there.",
        "VOXLINE_HEARD_MS": "1000",  # the fake Asterisk answers endpos=8000
    }

    stub.requests.clear()
    again = FakeAsterisk()
    try:
        assert call(again, settings, "Hello there.").status == "OK"
    finally:
        again.close()
    assert stub.requests == []
    assert again.played() == [played]


def test_an_ssml_prompt_is_sent_whole_with_its_text_type(stub, tmp_path):
    settings = Settings(url=stub.url, cache_dir=str(tmp_path), text_type="ssml")
    ssml = '<speak>Hello there. <break time="300ms"/>Your code is ready.</speak>'
    fake = FakeAsterisk()
    try:
        outcome = call(fake, settings, ssml)
    finally:
        fake.close()
    assert outcome.status == "OK"
    assert [r["text"] for r in stub.requests] == [ssml]  # not cut into sentences here
    assert stub.requests[0]["text_type"] == "ssml"
    assert fake.variables()["VOXLINE_HEARD"] == ssml
    with pytest.raises(ConfigError):
        Settings(url=stub.url, text_type="html")


def test_sentences_are_pipelined(stub, tmp_path):
    """Sentence n+1 is requested while sentence n is still playing."""

    def slow_playback(command: str) -> list[str]:
        if command.startswith("STREAM FILE"):
            time.sleep(1.0)  # long enough that "before it ended" needs no tight bound
        return default_responder(command)

    settings = Settings(url=stub.url, cache_dir=str(tmp_path))
    fake = FakeAsterisk(respond=slow_playback)
    stub_times: list[float] = []
    original = stub.handle
    stub.handle = lambda handler: (stub_times.append(time.monotonic()), original(handler))
    try:
        text = "First sentence is here. Second one follows now. And a third to finish."
        assert call(fake, settings, text).status == "OK"
    finally:
        fake.close()
    assert [r["text"] for r in stub.requests] == split_sentences(text)
    plays = [t for t, c in fake.commands if c.startswith("STREAM FILE")]
    assert len(plays) == 3
    # Request 2 went out before playback 1 finished (its reply came 1 s after the command).
    assert stub_times[1] < plays[0] + 0.95
    assert stub_times[2] < plays[1] + 0.95


def test_digit_interrupts_and_skips_the_rest(stub, tmp_path):
    fake = FakeAsterisk(
        respond=lambda c: (
            ["200 result=53 endpos=800"] if c.startswith("STREAM FILE") else default_responder(c)
        )
    )
    try:
        outcome = call(fake, Settings(url=stub.url, cache_dir=str(tmp_path)), "One here. Two here.")
    finally:
        fake.close()
    assert (outcome.status, outcome.digit) == ("INTERRUPTED", "5")
    assert len(fake.played()) == 1
    assert fake.variables()["VOXLINE_DIGIT"] == "5"


@pytest.mark.parametrize(
    "mode, reason", [("error", "http_503"), ("bad_type", "bad_audio"), ("slow", "timeout")]
)
def test_failures_play_the_fallback(stub, tmp_path, mode, reason):
    stub.mode = mode
    settings = Settings(
        url=stub.url, cache_dir=str(tmp_path), first_byte_timeout=0.5, fallback="beep"
    )
    fake = FakeAsterisk()
    start = time.monotonic()
    try:
        outcome = call(fake, settings, "Anything.")
    finally:
        fake.close()
    assert time.monotonic() - start < 1.5
    assert outcome.status == "ERROR" and outcome.error.startswith(reason)
    assert fake.played() == ["beep"]
    assert fake.variables()["VOXLINE_STATUS"] == "ERROR"
    assert [n for n in os.listdir(tmp_path)] == []  # nothing half-written left behind


def test_bad_channel_setting_is_an_error_not_a_crash(stub, tmp_path):
    fake = FakeAsterisk(
        respond=lambda c: (
            ["200 result=1 (soon)"] if "VOXLINE_TTS_TIMEOUT" in c else default_responder(c)
        )
    )
    try:
        outcome = call(fake, Settings(url=stub.url, cache_dir=str(tmp_path)), "Hi.")
    finally:
        fake.close()
    assert outcome.status == "ERROR" and outcome.error.startswith("config")
    assert fake.played() == ["im-sorry"]


def test_settings_precedence(tmp_path):
    conf = tmp_path / "telephony.conf"
    conf.write_text("[voxline]\n# comment\nurl = http://tts:1\nvoice = file\nlanguage = fr\n")
    env = {
        "VOXLINE_TTS_CONFIG": str(conf),
        "VOXLINE_TTS_VOICE": "env",
        "VOXLINE_TTS_TIMEOUT": "7.5",
    }
    settings = from_environment(env)
    assert (settings.url, settings.voice, settings.language, settings.timeout) == (
        "http://tts:1",
        "env",
        "fr",
        7.5,
    )
    channel = {"VOXLINE_TTS_LANGUAGE": "de", "VOXLINE_TTS_VOICE": ""}
    merged = with_channel(settings, channel.get)
    assert (merged.voice, merged.language) == ("env", "de")
    assert merged.merged({"voice": "arg"}).voice == "arg"


@pytest.mark.parametrize(
    "values",
    [
        {"url": "ftp://x"},
        {"timeout": "0"},
        {"nope": "1"},
        {"escape_digits": "12x"},
        {"cache_max_mb": "lots"},
    ],
)
def test_bad_settings_are_rejected(values):
    with pytest.raises(ConfigError):
        Settings().merged(values)


def test_missing_config_file_named_in_env_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        from_environment({"VOXLINE_TTS_CONFIG": str(tmp_path / "absent.conf")})
    with pytest.raises(ConfigError):
        (tmp_path / "bad.conf").write_text("no equals sign\n")
        read_config_file(str(tmp_path / "bad.conf"))


WORDS = [{"word": "Hi", "start_ms": 0.0, "end_ms": 80.0, "text_start": 0, "text_end": 2}]


def test_cache_evicts_least_recently_used_with_its_words(tmp_path):
    cache = PromptCache(str(tmp_path), max_bytes=3500)
    for n, name in enumerate(["a", "b", "c"]):
        cache.store(name, b"x" * 1000, WORDS)
        os.utime(tmp_path / f"{name}{EXTENSION}", (1000 + n, 1000 + n))
    assert cache.lookup("a") is not None  # refreshes a: b is now the oldest
    cache.store("d", b"y" * 1000, [])
    kept = ["a", "c", "d"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"{k}{EXTENSION}" for k in kept] + [f"{k}{WORDS_EXTENSION}" for k in kept]
    )
    assert cache.lookup("b") is None
    assert cache.lookup("a") == Prompt(str(tmp_path / "a"), WORDS)
    assert cache.lookup("d") == Prompt(str(tmp_path / "d"), [])


def test_cache_entry_without_readable_words_is_a_miss(tmp_path):
    cache = PromptCache(str(tmp_path), max_bytes=10**6)
    (tmp_path / f"old{EXTENSION}").write_bytes(b"audio cached before words were")
    assert cache.lookup("old") is None
    cache.store("bad", b"audio", WORDS)
    (tmp_path / f"bad{WORDS_EXTENSION}").write_text('[{"word": "Hi", "start_')
    assert cache.lookup("bad") is None
    assert cache.store("bad", b"audio", WORDS) == cache.lookup("bad")


def test_cache_write_failure_leaves_no_file(tmp_path):
    cache = PromptCache(str(tmp_path / "sub"), max_bytes=10**6)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / f"k{EXTENSION}").mkdir()  # the rename cannot replace a folder
    with pytest.raises(OSError):
        cache.store("k", b"audio", WORDS)
    assert os.listdir(tmp_path / "sub") == [f"k{EXTENSION}"]


def test_prompt_key_covers_what_changes_the_audio():
    base = prompt_key("Hi.", "joe", "en", "speed=1.1&seed=3")
    assert base == prompt_key("Hi.", "joe", "en", "seed=3&speed=1.1")
    others = {
        prompt_key("Hi!", "joe", "en", ""),
        prompt_key("Hi.", "ann", "en", ""),
        prompt_key("Hi.", "joe", "de", ""),
        prompt_key("Hi.", "joe", "en", "speed=1.2"),
    }
    assert base not in others and len(others) == 4


def test_split_sentences():
    assert split_sentences("  Hello.   This is   Voxline!  Bye? ") == [
        "Hello. This is Voxline!",
        "Bye?",
    ]
    assert split_sentences("") == []
    long = "word " * 120
    parts = split_sentences(long, max_chars=100)
    assert all(len(p) <= 100 for p in parts) and " ".join(parts) == long.strip()
    assert split_sentences("x" * 250, max_chars=100) == ["x" * 100, "x" * 100, "x" * 50]

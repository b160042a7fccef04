"""The voxline.agi script run by a real Asterisk 22: playback, cache, failure, barge-in, hang-up."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from calls import agi_call, start_call

from tests.waiting import wait_until

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

TWO_SENTENCES = "Thank you for calling Voxline, the voice server. Your call matters to us."
LONG_SENTENCE = (
    "Welcome to the Voxline demonstration line, where every prompt that you hear is "
    "synthesized on the fly by a neural voice running on our own server."
)


def settings(asterisk, test_id: str, url: str, **extra: str) -> dict[str, str]:
    """Channel variables that point the AGI at a server and a per-test prompt cache."""
    values = {
        "VOXLINE_TTS_URL": url,
        "VOXLINE_TTS_CACHE_DIR": str(asterisk.path("prompts", test_id)),
    }
    values.update({f"VOXLINE_TTS_{k.upper()}": v for k, v in extra.items()})
    return values


def core_sound_samples(asterisk, name: str) -> int:
    """How many 8 kHz samples an Asterisk core sound (GSM: 33 bytes per 160 samples) holds."""
    # sounds/en is an absolute symlink inside the chroot: look in the real folders.
    path = next((asterisk.root / "usr/share/asterisk/sounds").glob(f"*/{name}.gsm"))
    return path.stat().st_size // 33 * 160


def agi_processes(marker: str) -> list[int]:
    """PIDs of running voxline.agi processes started from a given Asterisk tree."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "voxline.agi" in cmdline and marker in cmdline:
            pids.append(int(entry.name))
    return pids


def running(pid: int) -> bool:
    """Whether a process still runs (one that exited but is not yet reaped has no cmdline)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_recording_is_the_server_audio_then_replays_from_cache(asterisk, tap, call_id):
    variables = settings(asterisk, call_id, tap.url)
    first = agi_call(asterisk, call_id + "a", TWO_SENTENCES, variables)
    assert first["status"] == "OK", first.values
    requests = tap.tts_requests()
    assert [r.query["text"] for r in requests] == [
        "Thank you for calling Voxline, the voice server.",
        "Your call matters to us.",
    ]
    assert all(r.query["format"] == "ulaw" and r.query["sample_rate"] == 8000 for r in requests)
    served = b"".join(r.audio for r in requests)
    assert len(served) > 8000  # more than a second of speech
    assert first.recording == served
    # Played to the end: the caller heard the whole text, every sample of it.
    assert first["heard"] == TWO_SENTENCES
    assert abs(int(first["heard_ms"]) - len(served) / 8) <= 1  # endpos counts every sample

    tap.reset()
    again = agi_call(asterisk, call_id + "b", TWO_SENTENCES, variables)
    assert again["status"] == "OK", again.values
    assert tap.tts_requests() == []
    assert again.recording == served
    assert again["heard"] == TWO_SENTENCES


def test_server_stopped_plays_fallback_and_returns(asterisk, stub, call_id):
    url = stub.url
    stub.close()
    result = agi_call(asterisk, call_id, "Is anybody there?", settings(asterisk, call_id, url))
    assert result["status"] == "ERROR"
    assert result["error"].startswith("unreachable"), result.values
    assert result["agistatus"] == "SUCCESS"
    # The caller heard the whole default fallback prompt, im-sorry.
    assert len(result.recording) == core_sound_samples(asterisk, "im-sorry")
    assert result.seconds < 3.0


def test_slow_first_byte_times_out_to_fallback(asterisk, stub, call_id):
    stub.mode = "slow"
    variables = settings(asterisk, call_id, stub.url, first_byte_timeout="1", fallback="beep")
    result = agi_call(asterisk, call_id, "This will never come.", variables)
    assert result["status"] == "ERROR"
    assert result["error"].startswith("timeout"), result.values
    assert len(result.recording) == core_sound_samples(asterisk, "beep")
    assert len(stub.requests) == 1  # one try: no second wait of the timeout
    # The channel's 1 s first-byte timeout, not the default 5 s: 1 s + the 0.44 s beep + a
    # process start and the AGI round trips (1.5 s of room on a loaded machine).
    assert result.seconds < 1.0 + 0.44 + 1.5


@pytest.mark.parametrize("mode, reason", [("error", "http_503"), ("bad_type", "bad_audio")])
def test_http_error_and_bad_audio_fall_back(asterisk, stub, call_id, mode, reason):
    stub.mode = mode
    result = agi_call(asterisk, call_id, "Broken.", settings(asterisk, call_id, stub.url))
    assert result["status"] == "ERROR"
    assert result["error"].startswith(reason), result.values
    assert len(result.recording) == core_sound_samples(asterisk, "im-sorry")


def test_dtmf_interrupts_the_prompt(asterisk, tap, call_id):
    variables = settings(asterisk, call_id, tap.url)
    # Warm the cache first so that playback starts at once and the key press lands mid-prompt.
    warm = agi_call(asterisk, call_id + "w", LONG_SENTENCE, variables)
    assert warm["status"] == "OK", warm.values
    full = len(warm.recording)
    assert full > 5 * 8000
    variables.update({"DTMF_AFTER": "1.5", "DTMF_DIGIT": "5"})
    result = agi_call(asterisk, call_id, LONG_SENTENCE, variables, caller="bargein")
    assert result["status"] == "INTERRUPTED", result.values
    assert result["digit"] == "5"
    assert 1.0 * 8000 < len(result.recording) < 2.5 * 8000 < full
    (served,) = tap.tts_requests()  # the warm-up's: this call played that cached prompt
    assert_heard_up_to_endpos(result, LONG_SENTENCE, served.words)


def assert_heard_up_to_endpos(result, text: str, words: list[dict]) -> None:
    """VOXLINE_HEARD is the text up to the last word that ended by the position playback
    stopped at (VOXLINE_HEARD_MS, STREAM FILE's endpos / 8): a strict prefix ending at a word."""
    heard, heard_ms = result["heard"], int(result["heard_ms"])
    # endpos agrees with what the caller's side recorded (MixMonitor), give or take 250 ms.
    assert abs(heard_ms - len(result.recording) / 8) < 250, (heard_ms, len(result.recording))
    done = [w for w in words if w["end_ms"] <= heard_ms]
    assert done and len(done) < len(words), (heard_ms, words)
    assert heard == text[: done[-1]["text_end"]]
    assert text.startswith(heard) and heard != text
    assert heard.endswith(done[-1]["word"])


def test_caller_hangup_ends_the_script_at_once(asterisk, tap, call_id):
    variables = settings(asterisk, call_id, tap.url)
    variables.update({"VOXLINE_TEXT": LONG_SENTENCE + " " + LONG_SENTENCE, "HANGUP_AFTER": "2"})
    start_call(asterisk, call_id, "agi", "hangup", variables)
    marker = str(asterisk.run_dir)
    wait_until(lambda: agi_processes(marker), 10, "the AGI script's start")
    pids = agi_processes(marker)
    # Note when the script is gone while it happens; the hang-up time (the caller's `h`
    # extension) is read after, so wait_db's CLI round trips do not count as the script's.
    wait_until(lambda: not any(running(p) for p in pids), 20, "the AGI script's exit")
    gone_at = time.time()
    ended = float(asterisk.wait_db("voxline-test", f"{call_id}-end", 15))
    assert 0 <= gone_at - ended < 0.5, gone_at - ended
    # The folder exists once a prompt was stored: the hang-up may come before the first one.
    prompts = asterisk.path("prompts", call_id)
    names = os.listdir(prompts) if os.path.isdir(prompts) else []
    assert [p for p in names if p.endswith(".part")] == []

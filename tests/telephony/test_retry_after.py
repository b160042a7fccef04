"""A busy server's 503 + Retry-After is waited out once, within `retry_wait` and the request's
timeout, before a prompt fails (AGI, FastAGI and AudioSocket share TtsRequest)."""

from __future__ import annotations

import email.utils
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_asterisk import FakeAsterisk
from stub_tts import tone_ulaw

from devtools.telephony.tts_server import TtsServer
from telephony.voxagi.client import PCM_TYPES, Cancelled, TtsError, TtsRequest, build_query
from telephony.voxagi.config import ConfigError, Settings, from_environment
from telephony.voxagi.speak import run_call
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def request(url: str, retry_wait: float = 3.0, timeout: float = 10.0,
            text: str = "Hello there.") -> TtsRequest:
    query = build_query(text, "", "en", "", "ulaw", 8000)
    return TtsRequest(url, query, 1.0, 2.0, timeout, retry_wait=retry_wait)


def fetch(url: str, **kwargs) -> tuple[bytes, float]:
    start = time.monotonic()
    audio = b"".join(request(url, **kwargs).chunks())
    return audio, time.monotonic() - start


def test_a_busy_server_is_asked_again_after_its_retry_after(stub):
    stub.busy = 1
    audio, took = fetch(stub.url)
    assert audio == tone_ulaw("Hello there.")
    assert len(stub.requests) == 2
    assert took >= 1.0  # Retry-After: 1


def test_an_http_date_retry_after_is_honoured(stub):
    stub.busy = 1
    stub.retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    audio, took = fetch(stub.url)
    assert audio == tone_ulaw("Hello there.") and len(stub.requests) == 2
    assert took >= 0.9  # the date has whole seconds: between 1 and 2 s from now


def test_the_wait_is_taken_once(stub):
    stub.busy = 5
    start = time.monotonic()
    with pytest.raises(TtsError) as info:
        b"".join(request(stub.url).chunks())
    assert info.value.reason == "http_503" and info.value.retry_after == 1.0
    assert len(stub.requests) == 2
    assert time.monotonic() - start >= 1.0


@pytest.mark.parametrize("retry_after, retry_wait, timeout", [
    ("5", 3.0, 10.0),  # longer than the caller may wait
    ("1", 0.0, 10.0),  # waiting turned off
    ("2", 3.0, 1.5),  # past the request's own timeout
    ("soon", 3.0, 10.0),  # not a delay: no wait
])
def test_no_wait_when_it_does_not_fit(stub, retry_after, retry_wait, timeout):
    stub.busy, stub.retry_after = 1, retry_after
    with pytest.raises(TtsError) as info:
        b"".join(request(stub.url, retry_wait=retry_wait, timeout=timeout).chunks())
    assert info.value.reason == "http_503"
    assert len(stub.requests) == 1  # a wait would have been followed by a second request


def test_of_several_busy_servers_the_soonest_is_asked_again(stub, second):
    stub.busy, stub.retry_after = 1, "2"
    second.busy, second.retry_after = 1, "1"
    audio, took = fetch(f"{stub.url},{second.url}")
    assert audio == tone_ulaw("Hello there.")
    assert (len(stub.requests), len(second.requests)) == (1, 2)  # the 1 s one, not the 2 s
    assert took >= 1.0


def test_a_hang_up_during_the_wait_ends_it_at_once(stub, caplog):
    stub.busy, stub.retry_after = 1, "3"
    req = request(stub.url)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            b"".join(req.chunks())
        except TtsError as exc:
            outcome.append(exc)

    with caplog.at_level("WARNING", logger="telephony"):
        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: "is busy" in caplog.text, 10, "the wait")
    assert "is busy; asking again in 3.0 s" in caplog.text  # the wait has begun
    cancelled_at = time.monotonic()
    req.abort()
    thread.join(5)
    assert time.monotonic() - cancelled_at < 0.5
    assert [type(e) for e in outcome] == [Cancelled]
    assert len(stub.requests) == 1


def test_the_caller_hears_the_prompt_after_a_busy_answer(stub, tmp_path):
    stub.busy = 1
    fake = FakeAsterisk()
    try:
        outcome = run_call(fake.channel(), Settings(url=stub.url, cache_dir=str(tmp_path)),
                           "Hello there.", {})
    finally:
        fake.close()
    assert outcome.status == "OK", outcome.error
    (played,) = fake.played()
    assert Path(played + ".ulaw").read_bytes() == tone_ulaw("Hello there.")
    assert fake.variables()["VOXLINE_HEARD"] == "Hello there."


def test_retry_wait_is_a_setting():
    assert Settings().retry_wait == 3.0
    env = {"VOXLINE_TTS_CONFIG": "", "VOXLINE_TTS_RETRY_WAIT": "0"}
    assert from_environment(env).retry_wait == 0.0
    with pytest.raises(ConfigError, match="retry_wait"):
        Settings(retry_wait=-1)


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory):
    """The real server (gunicorn, Piper) with room for one request: a second one gets 503
    with the scheduler's own Retry-After."""
    env = {"VOXLINE_MAX_ACTIVE": "1", "VOXLINE_MAX_QUEUE": "0"}
    server = TtsServer(ROOT, "piper", tmp_path_factory.mktemp("one-slot") / "gunicorn.log", env)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_the_real_servers_retry_after_gets_the_second_call_served(one_slot_server, caplog):
    """The first caller holds the one slot with a long text; the second is refused, waits the
    server's own Retry-After, and is served in full after the first hangs up (its render is
    dropped at the next step, well within the wait)."""
    url = one_slot_server.url

    def pcm_request(text: str) -> TtsRequest:
        query = build_query(text, "", "en", "cache=false", "pcm", 8000)
        return TtsRequest(url, query, 1.0, 5.0, 30.0, accept_types=PCM_TYPES,
                          retry_wait=5.0)

    first = pcm_request(" ".join(f"This is sentence number {n} of a long prompt." for n in
                                 range(1, 41)))  # seconds of render: busy when the second asks
    chunks = first.chunks()
    head = next(chunks)
    second: dict[str, bytes | BaseException] = {}

    def run() -> None:
        try:
            second["audio"] = b"".join(pcm_request("Hello from the second caller.").chunks())
        except TtsError as exc:
            second["error"] = exc

    with caplog.at_level("WARNING", logger="telephony"):
        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: "is busy" in caplog.text or not thread.is_alive(), 10, "a refusal")
        assert "is busy; asking again in 1.0 s" in caplog.text, second
        first.abort()  # the first caller hangs up
        with pytest.raises(Cancelled):
            b"".join(chunks)
        thread.join(30)
    assert "error" not in second, second
    assert len(second["audio"]) % 2 == 0
    # The first caller's first read (up to 8 KiB, may end mid-sample), the second's whole
    # sentence (about 1.5 s).
    for audio, least in ((head[: len(head) // 2 * 2], 1000), (second["audio"], 8000)):
        samples = np.frombuffer(audio, dtype="<i2")
        assert len(samples) > least
        assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300  # speech, not silence

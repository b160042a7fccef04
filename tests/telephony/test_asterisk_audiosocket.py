"""The AudioSocket service on a real Asterisk 22: say, flush (barge-in), DTMF and hang-up."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from calls import hostport, start_call

from devtools.telephony.probe import Probe
from telephony.audiosocket.service import AudioSocketService
from telephony.voxagi.config import Settings

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

SENTENCE = "Your table for four is booked for Friday at seven in the evening."
LONG = (
    "Thank you for waiting. I am now reading back the whole of your order, item by item, "
    "so please listen carefully and interrupt me at any moment if something is wrong."
)


@pytest.fixture
def service(tap):
    """The AudioSocket service with its control API, both on free loopback ports."""
    svc = AudioSocketService(Settings(url=tap.url), ("127.0.0.1", 0), ("127.0.0.1", 0))
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def probe():
    """The caller's ears: an AudioSocket listener that timestamps what arrives."""
    server = Probe().serve()
    yield server
    server.stop()


class Control:
    """A tiny client for the control API."""

    def __init__(self, service: AudioSocketService) -> None:
        self.base = f"http://{hostport(service.control_address)}"

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=40) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    def wait_call(self, call: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/calls/{call}")[0] != 200:
            assert time.monotonic() < deadline, "Asterisk never connected the call"
            time.sleep(0.05)

    def wait_gone(self, call: str, timeout: float = 3) -> None:
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/calls/{call}")[0] != 404:
            assert time.monotonic() < deadline, "the call was not freed"
            time.sleep(0.05)

    def last_seq(self, call: str) -> int:
        """The sequence number of the call's latest event (wait for later ones from it)."""
        return self.request("GET", f"/calls/{call}/events?since=0")[1]["last"]

    def wait_event(self, call: str, kind: str, timeout: float = 30, since: int = 0) -> dict:
        """The first event of `kind` after event number `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.request("GET", f"/calls/{call}/events?since={since}&wait=5")
            assert status == 200, body
            for event in body["events"]:
                if event["type"] == kind:
                    return event
            since = body["last"]
        raise AssertionError(f"no {kind} event")


def place_call(asterisk, service, probe, test_id: str, caller: str = "probe", **extra: str):
    """Connect a caller (the probe) to the AudioSocket example; return both call ids."""
    callee, ear = str(uuid.uuid4()), str(uuid.uuid4())
    variables = {
        "VOXLINE_CALL_ID": callee,
        "VOXLINE_AUDIOSOCKET": hostport(service.audio_address),
        "PROBE_ID": ear,
        "PROBE_ADDR": probe.address,
        **extra,
    }
    start_call(asterisk, test_id, "audiosocket", caller, variables)
    return callee, ear


def best_alignment(heard: np.ndarray, expected: np.ndarray) -> float:
    """The normalised correlation of `expected` with the best-aligned stretch of `heard`."""
    n = len(heard) + len(expected)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(heard, size) * np.conj(np.fft.rfft(expected, size))
    lag = int(np.argmax(np.fft.irfft(spectrum, size)[: len(heard) - len(expected) + 1]))
    segment = heard[lag : lag + len(expected)]
    return float(segment @ expected / (np.linalg.norm(segment) * np.linalg.norm(expected)))


def test_say_plays_the_server_audio(asterisk, tap, service, probe, call_id):
    control = Control(service)
    callee, ear = place_call(asterisk, service, probe, call_id)
    control.wait_call(callee)
    heard = probe.wait_call(ear)
    status, body = control.request("POST", f"/calls/{callee}/say", {"text": SENTENCE})
    assert status == 202, body
    control.wait_event(callee, "done")
    time.sleep(0.2)
    (exchange,) = tap.tts_requests()
    assert exchange.query["format"] == "pcm" and exchange.query["sample_rate"] == "8000"
    expected = np.frombuffer(bytes(exchange.body), "<i2").astype(np.float64)
    assert len(expected) > 2 * 8000
    got = np.asarray(heard.samples(), dtype=np.float64)
    assert best_alignment(got, expected) >= 0.99
    status, body = control.request("GET", "/calls")
    assert [c["id"] for c in body["calls"]] == [callee]
    heard.hang_up()  # the caller hangs up: the session goes away
    control.wait_gone(callee)
    assert service.registry.all() == []


def test_flush_stops_the_audio_within_60_ms(asterisk, tap, service, probe, call_id):
    control = Control(service)
    callee, ear = place_call(asterisk, service, probe, call_id)
    control.wait_call(callee)
    heard = probe.wait_call(ear)
    control.request("POST", f"/calls/{callee}/say", {"text": LONG})
    control.wait_event(callee, "speaking")
    time.sleep(1.0)
    flushed_at = time.time()
    status, body = control.request("POST", f"/calls/{callee}/flush")
    answered_at = time.time()  # the service answers once it has dropped the audio
    assert status == 200 and body["dropped"] == 1
    assert answered_at - flushed_at < 0.5
    time.sleep(0.6)
    # After a flush the service sends digital silence: any non-zero sample is speech. Counted
    # from the answer: the control request's own latency on a loaded machine is not the
    # service's (the answer itself is bounded above).
    last = heard.last_sound(threshold=0)
    assert last is not None and last > flushed_at - 0.1, "no speech just before the flush"
    assert last - answered_at <= 0.060
    # About the one second between "speaking" and the flush was played, of a ~9 s utterance.
    spoken = sum(1 for _, frame in heard.frames if any(frame)) * 160
    assert 0.5 * 8000 < spoken < 1.5 * 8000
    # After the flush the line carries silence, not nothing: frames keep arriving.
    assert heard.frames[-1][0] > flushed_at + 0.4
    heard.hang_up()


def test_dtmf_is_reported_and_api_hangup_ends_the_call(asterisk, tap, service, probe, call_id):
    control = Control(service)
    callee, ear = place_call(asterisk, service, probe, call_id, caller="dtmf", DTMF_DIGIT="7")
    control.wait_call(callee)
    event = control.wait_event(callee, "dtmf", timeout=10)
    assert event["digit"] == "7"
    status, _ = control.request("POST", f"/calls/{callee}/say", {"text": LONG})
    assert status == 202
    control.wait_event(callee, "speaking")
    status, _ = control.request("POST", f"/calls/{callee}/hangup")
    assert status == 202
    control.wait_gone(callee)
    asterisk.wait_db("voxline-test", f"{call_id}-end", 3)  # Asterisk hung up the caller too
    assert service.registry.all() == []
    deadline = time.monotonic() + 2
    while any(callee[:8] in t.name for t in threading.enumerate()):
        assert time.monotonic() < deadline, "call threads still running"
        time.sleep(0.05)


@pytest.fixture
def session_service(tts_server):
    """The AudioSocket service talking to the real server directly (sessions are websockets)."""
    svc = AudioSocketService(Settings(url=tts_server.url), ("127.0.0.1", 0), ("127.0.0.1", 0))
    svc.start()
    yield svc
    svc.stop()


def test_session_tokens_speak_and_cancel_silences(asterisk, session_service, probe, call_id):
    control = Control(session_service)
    callee, ear = place_call(asterisk, session_service, probe, call_id)
    control.wait_call(callee)
    heard = probe.wait_call(ear)
    path = f"/calls/{callee}/session"
    for token in ["Your", " table", " is", " booked", ".", " See", " you", " soon", "."]:
        assert control.request("POST", path, {"type": "input_text.append", "text": token})[0] == 202
    control.request("POST", path, {"type": "input_text.end"})
    done = control.wait_event(callee, "speech.audio.done")
    assert [s["text"] for s in done["segments"]] == ["Your table is booked.", "See you soon."]
    control.wait_event(callee, "done")  # the call finished playing that context
    time.sleep(0.2)
    spoken_ms = sum(1 for _, frame in heard.frames if any(frame)) * 20
    assert 0.8 * done["audio_ms"] <= spoken_ms <= 1.1 * done["audio_ms"] + 40
    # Barge-in: a long context, cancelled while it plays.
    seen = control.last_seq(callee)
    control.request("POST", path, {"type": "input_text.append", "text": LONG, "context_id": "b"})
    control.request("POST", path, {"type": "input_text.flush", "context_id": "b"})
    control.wait_event(callee, "speaking", since=seen)  # context b's, not the first turn's
    time.sleep(1.0)
    cancelled_at = time.time()
    status, answer = control.request("POST", path, {"type": "context.cancel", "context_id": "b"})
    answered_at = time.time()  # the service stopped the audio before it asked the server
    assert status == 202 and answer["sent"] == "context.cancel"
    assert answered_at - cancelled_at < 1.0
    ack = control.wait_event(callee, "context.cancelled")
    time.sleep(0.6)
    last = heard.last_sound(threshold=0)
    assert last is not None and 0 <= last - cancelled_at + 0.1
    assert last - answered_at <= 0.060
    assert 500 <= ack["played_ms"] <= 1500 and ack["segments"][0]["text"].startswith("Thank")
    # The answer to the cancel: the Piper words that had ended when the caller stopped hearing.
    assert answer == {k: v for k, v in ack.items() if k not in ("seq", "time", "type")} | {
        "sent": "context.cancel"
    }
    words = answer["words"]
    assert words and all(w["end_ms"] <= answer["played_ms"] <= answer["audio_ms"] for w in words)
    assert answer["heard_text"] == LONG[: words[-1]["text_end"]]
    assert LONG.startswith(answer["heard_text"]) and answer["heard_text"] != LONG
    heard.hang_up()

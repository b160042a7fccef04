"""A hostile client on the websocket, through a real gunicorn on the tone engine: thousands of
mutated session messages (tests/realtime/ws_fuzz.py), each answered with `error` or accepted,
the session alive after each, and the gunicorn worker never replaced."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from tests.realtime.ws_fuzz import Mutation, mutations

pytestmark = pytest.mark.slow

SEED = 16
COUNT = 2200
CHECK_EVERY = 250  # a valid utterance, start to end, every so many mutations
MAX_FAILURES = 10  # stop early: each failure costs a reconnect (and maybe a worker restart)
ANSWERS = {
    "error",
    "session.updated",
    "context.cancelled",
    "speech.audio.delta",
    "speech.segment",
    "speech.words",
    "speech.audio.done",
}


def worker_pids(master: int) -> set[int]:
    """The gunicorn master's child processes, read from /proc (no psutil)."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended while we looked
        if int(fields[1]) == master:
            pids.add(int(stat.parent.name))
    return pids


class Fuzzer:
    """One session at a time; every mutation is followed by a probe whose ack closes it."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http", "ws", 1) + "/v1/audio/speech/stream"
        self.ws = None
        self.probes = 0
        self.failures: list[str] = []

    def open(self, timeout: float = 60.0) -> None:
        """A new session; waits while the server is unavailable (a replaced worker loading)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ws = connect(
                    self.url, open_timeout=10, close_timeout=1, max_size=None
                ).__enter__()
                break
            except (InvalidHandshake, ConnectionClosed, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        created = json.loads(self.ws.recv(timeout=10))
        assert created["type"] == "session.created", created

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def send(self, mutation: Mutation) -> None:
        """Send it, then cancel whatever it may have opened and wait for a probe's ack: what
        came before the ack is the mutation's answer."""
        try:
            answers = self._exchange(mutation)
        except (ConnectionClosed, TimeoutError) as exc:
            self._fail(mutation, f"session lost: {type(exc).__name__} {exc}")
            return
        types = [a.get("type") for a in answers]
        if not set(types) <= ANSWERS:
            self._fail(mutation, f"unexpected answers {types}")
        elif mutation.must_refuse and "error" not in types:
            self._fail(mutation, f"accepted, answers {types}")

    def _exchange(self, mutation: Mutation) -> list[dict]:
        self.ws.send(mutation.frame)
        self.probes += 1
        probe = f"probe-{self.probes}"
        for context in ("default", "c1", "c2", probe):
            self.ws.send(json.dumps({"type": "context.cancel", "context_id": context}))
        answers = []
        while True:
            raw = self.ws.recv(timeout=5)
            message = json.loads(raw)
            if message.get("type") == "context.cancelled" and message.get("context_id") == probe:
                return answers
            answers.append(message)

    def speak(self) -> None:
        """A valid utterance with known settings: the session still works."""
        try:
            self.ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "voice": "tone-a",
                            "language": "en",
                            "format": "pcm",
                            "sample_rate": 24000,
                            "speed": 1.0,
                            "max_buffer_delay_ms": 400,
                        },
                    }
                )
            )
            self.ws.send(
                json.dumps({"type": "input_text.append", "context_id": "check", "text": "Hi."})
            )
            self.ws.send(json.dumps({"type": "input_text.end", "context_id": "check"}))
            audio = 0
            while True:
                message = json.loads(self.ws.recv(timeout=10))
                if message.get("context_id") != "check":
                    assert message["type"] in ("session.updated", "context.cancelled"), message
                elif message["type"] == "speech.audio.delta":
                    audio += len(message["audio"])
                elif message["type"] == "speech.audio.done":
                    break
                else:
                    assert message["type"] in ("speech.segment", "speech.words"), message
            assert audio > 0
        except (ConnectionClosed, TimeoutError, AssertionError) as exc:
            self._fail(None, f"valid utterance failed: {type(exc).__name__} {exc}")

    def _fail(self, mutation: Mutation | None, what: str) -> None:
        frame = "" if mutation is None else repr(mutation.frame[:80])
        kind = "check" if mutation is None else mutation.kind
        self.failures.append(f"{kind}: {what} (frame {frame})")
        self.close()
        self.open()  # the next mutation gets a fresh session


def fuzz(url: str, count: int) -> tuple[int, list[str]]:
    """Send `count` mutations; (sent, failures)."""
    fuzzer = Fuzzer(url)
    fuzzer.open()
    sent = 0
    started = time.monotonic()
    try:
        for mutation in mutations(SEED, count):
            fuzzer.send(mutation)
            sent += 1
            if sent % CHECK_EVERY == 0:
                fuzzer.speak()
            if len(fuzzer.failures) >= MAX_FAILURES:
                break
        fuzzer.speak()
    finally:
        fuzzer.close()
    print(
        f"ws fuzz: {sent} mutated messages sent (seed {SEED}) in "
        f"{time.monotonic() - started:.1f} s, {len(fuzzer.failures)} failures"
    )
    return sent, fuzzer.failures


@pytest.fixture
def tone_server(spawn_server):
    """A gunicorn of its own per test: a test that kills its worker spoils no other."""
    return spawn_server(
        VOXLINE_ENGINE="tone", VOXLINE_PHRASE_CACHE_MB="0", VOXLINE_SESSION_IDLE_S="300"
    )


def test_mutated_messages_never_break_a_session_or_the_worker(tone_server):
    (worker,) = worker_pids(tone_server.proc.pid)
    sent, failures = fuzz(tone_server.url, COUNT)
    assert worker_pids(tone_server.proc.pid) == {worker}, "the gunicorn worker was replaced"
    assert not failures, "\n".join(failures)
    assert sent == COUNT >= 2000

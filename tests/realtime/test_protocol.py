"""The session protocol over real websockets, on the fake engine: every message and its order."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes import FakeEngine
from tests.realtime.conftest import audio_of, pcm
from tests.waiting import wait_until

SEGMENT_MS = 3 * 480 / 24000 * 1000  # the fake engine: 3 chunks of 480 samples at 24 kHz


@pytest.fixture
def server(serve):
    return serve(FakeEngine(chunk_len=480))


def test_created_then_updated_with_full_effective_settings(server):
    client = server.connect()
    created = client.recv()
    assert created["type"] == "session.created"
    session = created["session"]
    assert session["voice"] == "alice" and session["format"] == "pcm"
    assert session["sample_rate"] == 24000 and session["language"] == "en"
    assert session["max_buffer_delay_ms"] == 400 and len(session["id"]) == 32
    client.send("session.update", session={"voice": "bob", "format": "ulaw", "top_k": 1})
    updated = client.recv()
    assert updated["type"] == "session.updated"
    assert updated["session"]["voice"] == "bob" and updated["session"]["format"] == "ulaw"
    assert updated["session"]["sample_rate"] == 8000 and updated["session"]["top_k"] == 1
    assert updated["session"]["temperature"] == session["temperature"]
    assert updated["session"]["id"] == session["id"]


def test_sentences_become_segments_with_audio_and_timeline(server):
    client = server.connect()
    client.recv()
    for token in ["Hello", " there.", " How", " are", " you?"]:
        client.send("input_text.append", text=token)
    client.send("input_text.end")
    messages = client.until("speech.audio.done")
    kinds = [m["type"] for m in messages]
    segments = [m for m in messages if m["type"] == "speech.segment"]
    assert [s["text"] for s in segments] == ["Hello there.", "How are you?"]
    # Each segment's deltas come before its speech.segment, the next segment's after it.
    first_seg = kinds.index("speech.segment")
    assert "speech.audio.delta" in kinds[:first_seg]
    assert (
        "speech.audio.delta" in kinds[first_seg + 1 : kinds.index("speech.segment", first_seg + 1)]
    )
    assert segments[0]["audio_start_ms"] == 0
    assert segments[0]["audio_end_ms"] == segments[1]["audio_start_ms"] == SEGMENT_MS
    assert segments[1]["audio_end_ms"] == 2 * SEGMENT_MS
    done = messages[-1]
    assert done["context_id"] == "default" and done["audio_ms"] == 2 * SEGMENT_MS
    assert [s["text"] for s in done["segments"]] == ["Hello there.", "How are you?"]
    expected = FakeEngine(chunk_len=480).expected({"offset": np.array([0.0])})
    assert audio_of(messages) == pcm(np.concatenate([expected, expected]))


def test_flush_and_timeout_cut_segments_without_end(server):
    client = server.connect()
    client.recv()
    client.send("session.update", session={"max_buffer_delay_ms": 150})
    client.recv()
    client.send("input_text.append", text="No sentence end here")
    client.send("input_text.flush")
    segment = client.until("speech.segment")[-1]
    assert segment["text"] == "No sentence end here"
    started = time.monotonic()
    client.send("input_text.append", text="Then a pause")
    segment = client.until("speech.segment")[-1]
    assert segment["text"] == "Then a pause"
    assert 0.15 <= time.monotonic() - started < 2.0
    assert segment["audio_start_ms"] == SEGMENT_MS


class TimedEngine(FakeEngine):
    """A fake engine taking 10 ms a chunk that notes when each text starts and finishes."""

    def __init__(self, chunk_len: int = 480) -> None:
        super().__init__(n_chunks=20, chunk_len=chunk_len)
        self.times: dict[str, list[float]] = {}

    def stream(self, text, voice, language, params):
        self.times[text] = [time.monotonic()]
        for chunk in super().stream(text, voice, language, params):
            time.sleep(0.01)
            yield chunk
        self.times[text].append(time.monotonic())


def test_segment_n_plus_1_is_synthesised_while_n_plays(serve):
    engine = TimedEngine(chunk_len=4800)  # 200 ms of compute for 4 s of audio a segment
    client = serve(engine).connect()
    client.recv()
    client.send("input_text.append", text="One. Two. Three. Four")
    client.send("input_text.end")
    done = client.until("speech.audio.done")[-1]
    assert [s["text"] for s in done["segments"]] == ["One.", "Two.", "Three.", "Four"]
    times = engine.times
    texts = ["One.", "Two.", "Three.", "Four"]
    for before, after in zip(texts, texts[1:], strict=False):
        # n+1 starts the moment n's synthesis ends (never competing with n for the model)...
        # (and then runs ahead of playback: 200 ms of compute for 4 s of audio). Waiting for
        # playback would start n+1 ~3.8 s late; 1 s leaves room for the thread hand-offs
        # (scheduler, render, player, feeder) on a loaded machine.
        assert 0 <= times[after][0] - times[before][1] < 1.0


def test_cancel_acks_with_audio_sent_and_then_silence(serve):
    engine = FakeEngine(n_chunks=50, chunk_len=480)
    engine.permits = threading.Semaphore(0)
    client = serve(engine).connect()
    client.recv()
    client.send("input_text.append", text="A first sentence. A second one. ", context_id="c1")
    engine.permits.release(3)
    before = client.until("speech.audio.delta", context_id="c1")
    while len(audio_of(before, "c1")) < 3 * 480 * 2:
        before += [client.recv()]
    client.send("context.cancel", context_id="c1")
    engine.permits.release(5)  # the loop may move on, but c1 cannot reach its end (50 chunks)
    before += client.until("context.cancelled", context_id="c1")
    engine.permits.release(1000)
    ack = before[-1]
    sent = audio_of(before, "c1")
    assert ack["audio_ms"] == len(sent) / 2 / 24000 * 1000
    assert ack["segments"] == [
        {
            "text": "A first sentence.",
            "audio_start_ms": 0,
            "audio_end_ms": ack["audio_ms"],
            "complete": False,
        }
    ]
    # Nothing of c1 after the ack, while another context still speaks.
    client.send("input_text.append", text="Other.", context_id="c2")
    client.send("input_text.end", context_id="c2")
    after = client.until("speech.audio.done", context_id="c2")
    assert all(m.get("context_id") != "c1" for m in after)
    assert audio_of(after, "c2")


def test_two_contexts_interleaved_keep_their_own_voice_and_timeline(serve):
    engine = TimedEngine(chunk_len=2400)  # 10x real time: "a" stays ahead, "b" interleaves
    client = serve(engine).connect()
    client.recv()
    client.send("input_text.append", text="Alice speaks here.", context_id="a")
    client.send("session.update", session={"voice": "bob"})
    client.send("input_text.append", text="Bob speaks here.", context_id="b")
    client.send("input_text.end", context_id="a")
    client.send("input_text.end", context_id="b")
    messages = client.until("speech.audio.done", context_id="a")
    if not any(m["type"] == "speech.audio.done" and m["context_id"] == "b" for m in messages):
        messages += client.until("speech.audio.done", context_id="b")
    assert audio_of(messages, "a") == pcm(engine.expected({"offset": np.array([0.0])}))
    assert audio_of(messages, "b") == pcm(engine.expected({"offset": np.array([0.25])}))
    contexts = [m["context_id"] for m in messages if m["type"] == "speech.audio.delta"]
    assert contexts.index("b") < len(contexts) - 1 - contexts[::-1].index("a")  # interleaved


def test_bad_messages_get_errors_and_the_session_lives(server):
    client = server.connect()
    client.recv()
    client.ws.send(b"\x00binary")
    client.ws.send("{not json")
    client.ws.send("[1, 2]")
    client.send("speak")
    client.send("input_text.append")
    client.send("input_text.append", text="x", context_id="bad id!")
    client.send("session.update", session={"voice": "nobody"})
    client.send("session.update", session={"format": "mp3"})
    client.send("session.update", session={"top_p": 85})
    client.send("session.update", session={"colour": "red"})
    codes = [client.recv()["error"]["code"] for _ in range(10)]
    assert codes == [
        "invalid_message",
        "invalid_json",
        "invalid_json",  # not an object: the same code as an HTTP body (one decoder)
        "unknown_type",
        "invalid_message",
        "invalid_context_id",
        "unknown_speaker",
        "unsupported_format",
        "invalid_parameter",
        "unknown_parameter",
    ]
    client.send("input_text.append", text="Still here.")
    client.send("input_text.end")
    done = client.until("speech.audio.done")[-1]
    assert done["segments"][0]["text"] == "Still here."


def test_context_limit_ended_context_and_unknown_ids(serve):
    engine = FakeEngine(chunk_len=480)
    # Held until "a" is refused more text: once its audio is done, "a" may be reused (CI once
    # finished it before the append arrived).
    engine.gate = threading.Event()
    client = serve(engine, session_max_contexts=2).connect()
    client.recv()
    client.send("input_text.append", text="one", context_id="a")
    client.send("input_text.append", text="two", context_id="b")
    client.send("input_text.append", text="three", context_id="c")
    error = client.until("error")[-1]
    assert error["error"]["code"] == "too_many_contexts" and error["context_id"] == "c"
    client.send("input_text.end", context_id="a")
    client.send("input_text.append", text="more", context_id="a")
    messages = client.until("error")
    assert messages[-1]["error"]["code"] == "context_ended"
    engine.gate.set()
    client.send("context.cancel", context_id="never")
    client.send("input_text.end", context_id="empty")
    messages = client.until("context.cancelled", context_id="never")
    messages += client.until("speech.audio.done", context_id="empty")
    assert messages[-1]["audio_ms"] == 0 and messages[-1]["segments"] == []
    client.send("context.cancel", context_id="b")
    client.until("context.cancelled", context_id="b")
    client.send("input_text.append", text="Room again.", context_id="c")
    client.send("input_text.end", context_id="c")
    assert client.until("speech.audio.done", context_id="c")[-1]["audio_ms"] == SEGMENT_MS


@pytest.mark.parametrize("fmt", ["ulaw", "alaw"])
def test_g711_context_equals_one_shot_encoding_of_its_segments(serve, fmt):
    from voxline.audio import AudioPipeline, resolve_output

    engine = FakeEngine(chunk_len=480)
    client = serve(engine).connect()
    client.recv()
    client.send("session.update", session={"format": fmt})
    assert client.recv()["session"]["sample_rate"] == 8000
    client.send("input_text.append", text="One. Two.")
    client.send("input_text.end")
    data = audio_of(client.until("speech.audio.done"))
    # One encoder for the whole context: resampled across the segment boundary seamlessly.
    one_segment = engine.expected({"offset": np.array([0.0])})
    with AudioPipeline(resolve_output(fmt, 8000, 24000, "pcm"), 24000) as pipeline:
        whole = pipeline.feed(np.concatenate([one_segment, one_segment])) + pipeline.finish()
    assert len(data) == 2 * 3 * 480 // 3 and data == whole


def test_l16_is_big_endian_pcm(serve):
    client = serve(FakeEngine(chunk_len=480)).connect()
    client.recv()
    client.send("session.update", session={"format": "l16", "sample_rate": 24000})
    client.recv()
    client.send("input_text.append", text="One.")
    client.send("input_text.end")
    data = audio_of(client.until("speech.audio.done"))
    expected = pcm(FakeEngine(chunk_len=480).expected({"offset": np.array([0.0])}))
    assert data == np.frombuffer(expected, "<i2").astype(">i2").tobytes()


def test_auth_bearer_or_query_key(serve):
    server = serve(FakeEngine(chunk_len=480), api_keys=("secret-key-1",))
    with pytest.raises(InvalidStatus) as info:
        server.connect()
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        server.connect("?api_key=wrong-key-1")
    assert server.connect("?api_key=secret-key-1").recv()["type"] == "session.created"
    client = server.connect(additional_headers={"Authorization": "Bearer secret-key-1"})
    assert client.recv()["type"] == "session.created"


def test_over_capacity_gets_busy_and_1013(serve):
    server = serve(FakeEngine(chunk_len=480), session_max=1)
    first = server.connect()
    first.recv()
    second = server.connect()
    assert second.recv()["error"]["code"] == "busy"
    with pytest.raises(ConnectionClosed):
        second.recv()
    assert second.ws.close_code == 1013
    first.close()
    deadline = time.monotonic() + 10  # the slot frees when the server's session thread ends
    while (message := server.connect().recv())["type"] != "session.created":
        assert message["error"]["code"] == "busy" and time.monotonic() < deadline
        time.sleep(0.05)


def test_scheduler_full_gets_busy_and_1013(serve):
    engine = FakeEngine(chunk_len=480)
    engine.gate = threading.Event()
    client = serve(engine, max_active=1, max_queue=0).connect()
    client.recv()
    client.send("input_text.append", text="One.", context_id="a")
    client.send("input_text.end", context_id="a")
    wait_until(lambda: engine.started == 1)  # "a" holds the only slot before "b" is sent
    client.send("input_text.append", text="Two.", context_id="b")
    client.send("input_text.end", context_id="b")
    error = client.until("error", timeout=5)[-1]
    assert error["error"]["code"] == "busy" and error["context_id"] == "b"
    assert error["error"]["retry_after"] == 1  # one job ahead, none finished yet: 1 s
    engine.gate.set()
    with pytest.raises(ConnectionClosed):
        while True:
            client.recv()
    assert client.ws.close_code == 1013


def test_idle_session_is_closed_with_a_reason(serve):
    server = serve(FakeEngine(chunk_len=480), session_idle_s=0.5)
    started = time.monotonic()  # before the server stamps the session (its idle clock)
    client = server.connect()
    client.recv()
    with pytest.raises(ConnectionClosed):
        client.recv(timeout=5)
    assert 0.5 <= time.monotonic() - started < 3
    assert client.ws.close_code == 1000 and "idle" in client.ws.close_reason


def test_messages_are_json_text_with_the_documented_fields(server):
    client = server.connect()
    client.recv()
    client.send("input_text.append", text="Hi.", context_id="c9")
    client.send("input_text.end", context_id="c9")
    for message in client.until("speech.audio.done"):
        assert set(message) <= {
            "type",
            "context_id",
            "audio",
            "text",
            "audio_start_ms",
            "audio_end_ms",
            "audio_ms",
            "segments",
            "words",
            "estimated",
        }
        assert json.loads(json.dumps(message)) == message


def test_server_sends_keepalive_pings(serve, caplog):
    caplog.set_level("DEBUG", logger="websockets.client")
    client = serve(FakeEngine(chunk_len=480), session_ping_s=0.2).connect()
    client.recv()
    time.sleep(0.9)
    pings = [r for r in caplog.records if r.getMessage().startswith("< PING")]
    pongs = [r for r in caplog.records if r.getMessage().startswith("> PONG")]
    assert len(pings) >= 3 and len(pongs) == len(pings)
    client.send("input_text.append", text="Alive.")
    client.send("input_text.end")
    assert client.until("speech.audio.done")[-1]["audio_ms"] == SEGMENT_MS


def test_opus_context_is_one_ogg_stream_of_the_right_length(serve, tmp_path):
    import subprocess

    engine = FakeEngine(n_chunks=25, chunk_len=480)  # 0.5 s a segment
    client = serve(engine).connect()
    client.recv()
    client.send("session.update", session={"format": "opus"})
    assert client.recv()["session"]["sample_rate"] == 48000
    client.send("input_text.append", text="One. Two.")
    client.send("input_text.end")
    data = audio_of(client.until("speech.audio.done"))
    assert data.startswith(b"OggS") and data.count(b"OpusHead") == 1
    path = tmp_path / "context.ogg"
    path.write_bytes(data)
    pcm_out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "48000",
            "pipe:1",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert len(pcm_out) / 2 / 48000 == pytest.approx(1.0, abs=0.03)


def test_a_draining_server_closes_sessions_once_their_audio_is_done(serve):
    engine = FakeEngine(n_chunks=20, chunk_len=480)
    engine.delay_s = 0.02
    server = serve(engine)
    client = server.connect()
    client.recv()
    client.send("input_text.append", text="Almost done.")
    client.send("input_text.end")
    client.until("speech.audio.delta")
    server.app.services.drain()  # what SIGTERM does (voxline.server.drain)
    done = client.until("speech.audio.done")[-1]
    assert done["audio_ms"] == 400  # the audio in progress finished
    with pytest.raises(ConnectionClosed):
        client.recv(timeout=3)
    assert client.ws.close_code == 1012

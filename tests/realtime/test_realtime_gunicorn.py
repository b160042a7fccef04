"""Sessions through a real gunicorn (gthread) process with Piper and a tiny XTTS."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from websockets.sync.client import connect

from tests.conftest import ROOT
from tests.realtime.conftest import Client, audio_of

pytestmark = pytest.mark.slow

# Deterministic and of fixed length on random weights (as in tests/e2e/test_gunicorn.py).
FIXED = {"top_k": 1, "seed": 11, "min_new_tokens": 24, "max_new_tokens": 24, "stream_chunk_size": 8}
TOKENS = ["Good", " morning", ".", " Your", " order", " has", " shipped", ".", " Bye"]


def session(url: str) -> Client:
    ws = connect(
        url.replace("http", "ws") + "/v1/audio/speech/stream", open_timeout=10, close_timeout=2
    ).__enter__()
    client = Client(ws)
    assert client.recv()["type"] == "session.created"
    return client


def tts_stream(url: str, body: dict) -> bytes:
    with requests.post(url + "/tts_stream", json=body, stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        return b"".join(r.iter_content(None))


def speak(client: Client, settings: dict) -> list[dict]:
    client.send("session.update", session=settings)
    assert client.recv()["type"] == "session.updated"
    for token in TOKENS:
        client.send("input_text.append", text=token)
    client.send("input_text.end")
    return client.until("speech.audio.done", timeout=120)


def test_tiny_xtts_session_equals_tts_stream_of_its_segments(spawn_server, tiny_xtts):
    server = spawn_server(
        VOXLINE_ENGINE="xtts",
        VOXLINE_XTTS_DIR=str(tiny_xtts),
        VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"),
        VOXLINE_MAX_BATCH="1",
    )
    messages = speak(session(server.url), {**FIXED, "format": "pcm"})
    segments = [m for m in messages if m["type"] == "speech.segment"]
    assert [s["text"] for s in segments] == ["Good morning.", "Your order has shipped.", "Bye"]
    got = audio_of(messages)
    want = b"".join(
        tts_stream(server.url, {**FIXED, "text": s["text"], "format": "pcm", "cache": False})
        for s in segments
    )
    assert len(got) > 0 and got == want
    done = messages[-1]
    assert done["audio_ms"] == pytest.approx(len(got) / 2 / 24000 * 1000, abs=0.1)
    ends = [
        round(
            len(
                b"".join(
                    tts_stream(server.url, {**FIXED, "text": s["text"], "format": "pcm"})
                    for s in segments[: i + 1]
                )
            )
            / 48,
            1,
        )
        for i in range(len(segments))
    ]
    assert [s["audio_end_ms"] for s in segments] == pytest.approx(ends, abs=0.1)


def test_piper_session_speaks_each_segment_like_tts_stream(spawn_server):
    server = spawn_server(VOXLINE_ENGINE="piper")
    client = session(server.url)
    messages = speak(client, {"format": "pcm"})
    segments = [m for m in messages if m["type"] == "speech.segment"]
    assert [s["text"] for s in segments] == ["Good morning.", "Your order has shipped.", "Bye"]
    got = np.frombuffer(audio_of(messages), "<i2")
    rate = 22050
    assert messages[-1]["audio_ms"] == pytest.approx(len(got) / rate * 1000, abs=0.1)
    # Piper samples its durations (noise_w): each segment's length is /tts_stream's within 20%.
    for seg in segments:
        alone = tts_stream(server.url, {"text": seg["text"], "format": "pcm", "cache": False})
        length_ms = seg["audio_end_ms"] - seg["audio_start_ms"]
        assert length_ms == pytest.approx(len(alone) / 2 / rate * 1000, rel=0.2)
        piece = got[
            int(seg["audio_start_ms"] * rate / 1000) : int(seg["audio_end_ms"] * rate / 1000)
        ]
        assert np.sqrt(np.mean(piece.astype(float) ** 2)) > 300  # speech, not silence
    # Barge-in under gunicorn: the ack comes, then nothing more of that context.
    client.send(
        "input_text.append",
        text="This is a long sentence that will be cut. " * 3,
        context_id="long",
    )
    client.send("input_text.flush", context_id="long")
    heard = client.until("speech.audio.delta", context_id="long", timeout=30)
    client.send("context.cancel", context_id="long")
    heard += client.until("context.cancelled", context_id="long")
    ack = heard[-1]
    assert ack["audio_ms"] == pytest.approx(len(audio_of(heard, "long")) / 2 / rate * 1000, abs=0.1)
    assert ack["audio_ms"] > 0 and len(ack["segments"]) < 3
    client.send("input_text.append", text="Next.", context_id="next")
    client.send("input_text.end", context_id="next")
    after = client.until("speech.audio.done", context_id="next", timeout=30)
    assert all(m.get("context_id") != "long" for m in after)

"""voxline_client.session.Session against a real websocket server with the fake engine."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.realtime.conftest import pcm
from voxline_client.session import Session, VoxlineSessionError


def test_deltas_in_audio_out_with_segments(serve):
    server = serve(FakeEngine())
    url = f"http://127.0.0.1:{server.port}"
    with Session(url, format="pcm") as session:
        assert session.settings["format"] == "pcm" and session.settings["voice"] == "alice"
        for token in ["Hello", " there.", " Bye"]:
            session.append(token)
        session.end()
        audio = b"".join(session.audio())
        expected = pcm(FakeEngine().expected({"offset": np.array([0.0])}))
        assert audio == expected + expected
        assert [s["text"] for s in session.segments()] == ["Hello there.", "Bye"]
        with pytest.raises(VoxlineSessionError) as caught:
            session.update(voice="nobody")
        assert caught.value.code == "unknown_speaker"
        session.append("Again.", context_id="second")
        session.end("second")
        assert b"".join(session.audio("second")) == expected


def test_cancel_returns_the_ack_and_the_audio_iterator_ends(serve):
    engine = FakeEngine(n_chunks=100)
    engine.permits = threading.Semaphore(2)
    server = serve(engine)
    with Session(f"http://127.0.0.1:{server.port}") as session:
        session.append("A long sentence here.", context_id="c")
        session.flush("c")
        chunks = session.audio("c")
        first = next(chunks)
        ack = session.cancel("c")
        engine.permits.release(1000)
        rest = list(chunks)
        heard = len(first) + sum(map(len, rest))
        assert ack["type"] == "context.cancelled" and ack["context_id"] == "c"
        assert ack["audio_ms"] == heard / 2 / 24000 * 1000 > 0


def test_busy_server_raises_at_connect(serve):
    server = serve(FakeEngine(), session_max=0)
    with pytest.raises(VoxlineSessionError) as caught:
        Session(f"http://127.0.0.1:{server.port}")
    assert caught.value.code == "busy"

"""voxline_client.session.Session against a real websocket server with the fake engine."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.realtime.conftest import pcm
from tests.waiting import wait_until
from voxline_client.session import Session, VoxlineSessionError


def test_deltas_in_audio_out_with_segments(serve):
    server = serve(FakeEngine(chunk_len=480))
    url = f"http://127.0.0.1:{server.port}"
    with Session(url, format="pcm") as session:
        assert session.settings["format"] == "pcm" and session.settings["voice"] == "alice"
        for token in ["Hello", " there.", " Bye"]:
            session.append(token)
        session.end()
        audio = b"".join(session.audio())
        expected = pcm(FakeEngine(chunk_len=480).expected({"offset": np.array([0.0])}))
        assert audio == expected + expected
        assert [s["text"] for s in session.segments()] == ["Hello there.", "Bye"]
        with pytest.raises(VoxlineSessionError) as caught:
            session.update(voice="nobody")
        assert caught.value.code == "unknown_speaker"
        session.append("Again.", context_id="second")
        session.end("second")
        assert b"".join(session.audio("second")) == expected


def test_cancel_returns_the_ack_and_the_audio_iterator_ends(serve):
    engine = FakeEngine(n_chunks=100, chunk_len=480)
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
    server = serve(FakeEngine(chunk_len=480), session_max=0)
    with pytest.raises(VoxlineSessionError) as caught:
        Session(f"http://127.0.0.1:{server.port}")
    assert caught.value.code == "busy"
    assert caught.value.retry_after is None  # a session slot: the server cannot tell when


def test_a_refused_segment_says_when_to_retry(serve):
    engine = FakeEngine(chunk_len=480)
    engine.gate = threading.Event()
    server = serve(engine, max_active=1, max_queue=0)
    with Session(f"http://127.0.0.1:{server.port}") as session:
        session.append("One.", context_id="a")
        session.end("a")
        wait_until(lambda: engine.started == 1)  # "a" holds the only slot before "b" is sent
        session.append("Two.", context_id="b")
        session.end("b")
        with pytest.raises(VoxlineSessionError) as caught:
            list(session.audio("b"))
        engine.gate.set()
    assert (caught.value.code, caught.value.context_id) == ("busy", "b")
    assert caught.value.retry_after == 1.0  # one job ahead, none finished yet


def test_words_index_the_text_appended(serve):
    server = serve(FakeEngine(chunk_len=480))
    text = "Hello there. Bye"
    with Session(f"http://127.0.0.1:{server.port}", format="pcm") as session:
        for token in ["Hello", " there.", " Bye"]:
            session.append(token)
        session.end()
        audio = b"".join(session.audio())
        words = session.words()
        assert [text[w["text_start"] : w["text_end"]] for w in words] == ["Hello", "there.", "Bye"]
        assert [w["start_ms"] for w in words] == sorted(w["start_ms"] for w in words)
        assert words[-1]["end_ms"] <= len(audio) / 2 / 24000 * 1000 + 0.1


def word(text_start: int, text_end: int, start_ms: float, end_ms: float) -> dict:
    return {
        "word": "w",
        "text_start": text_start,
        "text_end": text_end,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }


@pytest.mark.parametrize(
    ("deltas", "messages", "expected", "rest"),
    [
        # Each word as the client wrote it, with the spacing before it; the rest at the end.
        (
            ["Hello,", " Dr. Smith!"],
            [[word(0, 6, 0, 300)], [word(7, 10, 400, 700), word(11, 17, 750, 1000)]],
            [("Hello,", 0, 0.3), (" Dr.", 0.4, 0.7), (" Smith!", 0.75, 1.0)],
            None,
        ),
        # One span spoken as two words ("$5": five, dollars) is one stretch spanning both.
        (
            ["It costs $5 now. "],
            [
                [
                    word(0, 2, 0, 100),
                    word(3, 8, 100, 300),
                    word(9, 11, 300, 500),
                    word(9, 11, 500, 800),
                    word(12, 16, 800, 1000),
                ]
            ],
            [("It", 0, 0.1), (" costs", 0.1, 0.3), (" $5", 0.3, 0.8), (" now.", 0.8, 1.0)],
            " ",
        ),
        # A span's later word in a later message is not handed out twice.
        (
            ["$5 each"],
            [[word(0, 2, 0, 200)], [word(0, 2, 200, 400), word(3, 7, 400, 600)]],
            [("$5", 0, 0.2), (" each", 0.4, 0.6)],
            None,
        ),
        # Text no word covers (an emoji) goes with the next word.
        (
            ["Hi 🙂 there"],
            [[word(0, 2, 0, 100), word(5, 10, 200, 400)]],
            [("Hi", 0, 0.1), (" 🙂 there", 0.2, 0.4)],
            None,
        ),
    ],
)
def test_context_text_turns_words_into_stretches_of_the_text_sent(deltas, messages, expected, rest):
    from voxline_client._realtime import ContextText

    text = ContextText()
    for delta in deltas:
        text.append(delta)
    stretches = [s for message in messages for s in text.spoken(message)]
    assert [(s.text, s.start_s, s.end_s) for s in stretches] == expected
    assert "".join(s.text for s in stretches) + (rest or "") == "".join(deltas)
    left = text.rest(9.0)
    assert (left.text if left else None) == rest
    assert text.rest(9.0) is None

"""Piper's first clause first, and several renders at once on a pool of sessions."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voxline.engines.base import TimedChunk, Word
from voxline.engines.piper_pool import (
    PieceStream,
    SessionPool,
    first_clause_end,
    split_first_clause,
)


@pytest.mark.parametrize(("text", "pieces"), [
    ("I found two orders on your account. The first one shipped.",
     ["I found two orders on your account. The first one shipped."]),
    ("Well, as I said before, your order shipped yesterday. It arrives Friday.",
     ["Well, as I said before,", "your order shipped yesterday. It arrives Friday."]),
    # A clause break in a later sentence does not cut the first.
    ("Thanks. Sure, I can help with that.", ["Thanks. Sure, I can help with that."]),
    ("If you hold on a moment - I will check.", ["If you hold on a moment -", "I will check."]),
    ("Nothing follows the comma here,", ["Nothing follows the comma here,"]),
    ("", [""]),
])
def test_split_first_clause(text, pieces):
    assert [p for _, p in split_first_clause(text)] == pieces
    for offset, piece in split_first_clause(text):
        assert text[offset:offset + len(piece)] == piece


def test_a_short_opening_word_is_not_a_clause_of_its_own():
    assert first_clause_end("Yes, that is right, it shipped.") == len("Yes, that is right,")


def fake_render(piece: str):
    """One chunk per sentence; each word timed, offsets within the piece."""
    for sentence in piece.split(". "):
        start = piece.index(sentence)
        words = tuple(Word(w, 0, 1, start + sentence.index(w), start + sentence.index(w) + len(w))
                      for w in sentence.split())
        yield TimedChunk(np.ones(len(sentence), dtype=np.float32), words)


def test_piece_stream_steps_the_first_clause_then_each_sentence_with_text_offsets():
    text = "Well, as I said before, it shipped. It arrives Friday."
    stream = PieceStream(text, fake_render)
    chunks = []
    while (chunk := stream.step()) is not None:
        chunks.append(chunk)
    assert [len(c) for c in chunks] == [len("Well, as I said before,"), len("it shipped"),
                                        len("It arrives Friday.")]
    for chunk in chunks:
        for word in chunk.words:  # offsets point into the whole text
            assert text[word.char_start:word.char_end] == word.text
    stream.close()
    assert stream.step() is None


class SlowSession:
    """Counts how many runs overlap across all sessions of a pool."""

    running = 0
    most = 0
    lock = threading.Lock()

    def run(self, output_names, inputs, run_options=None):
        with SlowSession.lock:
            SlowSession.running += 1
            SlowSession.most = max(SlowSession.most, SlowSession.running)
        time.sleep(0.05)
        with SlowSession.lock:
            SlowSession.running -= 1
        return [inputs["x"] * 2]


def test_session_pool_runs_as_many_renders_at_once_as_it_has_sessions():
    pool = SessionPool([SlowSession(), SlowSession()])
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        pool.run(None, {"x": np.array([i])})[0][0])) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(results) == [0, 2, 4, 6, 8, 10]
    assert SlowSession.most == 2


class GatedSession:
    """Records which session ran; blocks until released, so overlaps are made, not timed."""

    def __init__(self, name: str, log: list, gate: threading.Event) -> None:
        self.name, self.log, self.gate = name, log, gate

    def run(self, output_names, inputs, run_options=None):
        self.log.append(self.name)
        assert self.gate.wait(5)
        return [inputs["x"]]


def test_a_render_alone_takes_the_wide_session_and_overlapping_ones_narrow_ones():
    log: list[str] = []
    gate = threading.Event()
    pool = SessionPool([GatedSession("narrow-1", log, gate), GatedSession("narrow-2", log, gate)],
                       wide=GatedSession("wide", log, gate))
    gate.set()
    pool.run(None, {"x": np.array([1])})
    assert log == ["wide"]  # alone: every core
    log.clear()
    gate.clear()
    threads = [threading.Thread(target=pool.run, args=(None, {"x": np.array([i])}))
               for i in range(3)]
    for t in threads:
        t.start()
        while len(log) < threads.index(t) + 1:  # each run has started before the next
            time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert log == ["wide", "narrow-1", "narrow-2"]
    log.clear()
    pool.run(None, {"x": np.array([1])})
    assert log == ["wide"]  # freed again once the others ended


def test_real_piper_renders_the_first_clause_first_on_parallel_sessions():
    pytest.importorskip("piper")
    from voxline.engines.base import SynthesisParams, chunk_parts
    from voxline.engines.piper_engine import PiperEngine

    engine = PiperEngine(renders=2)
    assert engine.parallel_renders == 2 and engine.aligned  # the pool runs the patched model
    voice = engine.builtin_voices()["joe"]
    text = "Well, as I said on the phone before, your order shipped yesterday afternoon."
    chunks = engine.stream(text, voice, "en", SynthesisParams())
    whole = np.concatenate([chunk_parts(c)[0] for c in chunks])
    stream = engine.open_stream(text, voice, "en", SynthesisParams())
    (first, first_words), (rest, rest_words) = (chunk_parts(stream.step()) for _ in range(2))
    assert stream.step() is None
    spoken = [text[w.char_start:w.char_end] for w in first_words + rest_words]
    assert spoken[0] == "Well" and spoken[-1] == "afternoon"  # exact words across the pieces
    # The first chunk is the opening clause only: well under the whole sentence.
    assert 0.2 * len(whole) < len(first) < 0.7 * len(whole)
    assert 0.7 * len(whole) < len(first) + len(rest) < 1.3 * len(whole)
    assert np.abs(first).max() > 0.05  # speech, not silence

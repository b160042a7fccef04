"""Piper's word mapping in the background: it overlaps the render, and when it fails or
hangs the words are estimated and every chunk still comes (real espeak-ng, no voice model)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.words.helpers import assert_valid_words, utterance_words
from tests.words.test_estimate import NASTY
from tests.words.test_piper_mapping import flat, phonemize
from voxline.engines.base import TimedChunk
from voxline.engines.piper_word_mapper import WordMapper
from voxline.engines.piper_words import EstimatedWords, SentenceTiming

TEXT = "Dr. Smith can see you at 3:30. Is that okay? Great, see you then!"


def fake_render(text: str, mapper: WordMapper, before_each=lambda: None) -> list[TimedChunk]:
    """The engine's loop without a model: each phoneme 100 samples, 50 before each sentence."""
    sentences = phonemize(text)
    words = mapper.start(text, sentences)
    chunks = []
    try:
        for phonemes in sentences:
            before_each()
            samples = 50 + 100 * len(phonemes)
            timing = SentenceTiming(50, (100,) * len(phonemes))
            chunks.append(TimedChunk(np.zeros(samples, np.float32),
                                     words.sentence_done(timing, samples)))
    finally:
        words.cancel()
    return chunks


def test_mapping_runs_while_the_first_sentence_renders():
    """The phonemizer waits for the render to start and the render for the phonemizer: both
    waits succeed only if they run at the same time."""
    render_started, mapping_started = threading.Event(), threading.Event()
    met: list[str] = []

    def phonemize_during_render(words):
        mapping_started.set()
        if render_started.wait(5):
            met.append("mapping saw the render")
        return flat(words)

    def first_render():
        if not render_started.is_set():
            render_started.set()
            if mapping_started.wait(5):
                met.append("render saw the mapping")

    chunks = fake_render(TEXT, WordMapper(phonemize_during_render, 1), first_render)
    assert sorted(met) == ["mapping saw the render", "render saw the mapping"]
    words, total = utterance_words(chunks)
    assert_valid_words(TEXT, words, total)
    assert not any(w.estimated for w in words)


def test_a_failing_mapping_still_gives_every_chunk_with_estimated_words():
    def broken(words):
        raise RuntimeError("espeak-ng is gone")

    chunks = fake_render(TEXT, WordMapper(broken, 1))
    assert len(chunks) == len(phonemize(TEXT)) == 4
    words, total = utterance_words(chunks)
    assert_valid_words(TEXT, words, total)
    assert all(w.estimated for w in words)


def test_a_stuck_mapping_is_waited_for_a_bounded_time():
    release = threading.Event()

    def stuck(words):
        release.wait(10)
        return flat(words)

    try:
        chunks = fake_render(TEXT, WordMapper(stuck, 1, wait_s=0.05))
    finally:
        release.set()
    words, total = utterance_words(chunks)
    assert_valid_words(TEXT, words, total)
    assert all(w.estimated for w in words)


@pytest.mark.parametrize("text", NASTY + [TEXT, "One. Two three four five six seven. Eight."])
def test_estimated_words_keep_the_invariants(text):
    sentences = phonemize(text)
    words = EstimatedWords(text, sentences)
    chunks = [TimedChunk(np.zeros(500, np.float32), words.sentence_done(None, 500))
              for _ in sentences]
    found, total = utterance_words(chunks)
    if chunks:
        assert_valid_words(text, found, total)
        assert all(w.estimated for w in found)

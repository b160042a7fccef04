"""Checks every word timing must pass, whichever engine produced it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from voxline.engines.base import TimedChunk, Word, chunk_parts
from voxline.engines.word_estimate import word_spans


def utterance_words(chunks: Iterable[np.ndarray | TimedChunk],
                    in_their_chunk: bool = True) -> tuple[list[Word], int]:
    """Words with samples counted from the utterance's start, and its length. With
    `in_their_chunk`, asserts that each chunk carries only words whose last sample lies in it
    (a zero-length word may sit on its first sample)."""
    words: list[Word] = []
    offset = 0
    for chunk in chunks:
        samples, carried = chunk_parts(chunk)
        for w in carried:
            assert w.end <= len(samples), (w, len(samples))
            if in_their_chunk:
                assert w.end > 0 or w.start == w.end == 0, (w, len(samples))
            words.append(Word(w.text, w.start + offset, w.end + offset, w.char_start,
                              w.char_end, w.estimated))
        offset += len(samples)
    return words, offset


def assert_valid_words(text: str, words: list[Word], total: int) -> None:
    """Every spoken word of `text` once, in order, its offsets slicing the text to it, its
    timing monotonic and within the utterance."""
    assert [(w.char_start, w.char_end) for w in words] == word_spans(text)
    previous_end = 0
    for w in words:
        assert text[w.char_start:w.char_end] == w.text
        assert 0 <= w.start <= w.end <= total, (w, total)
        assert w.start >= previous_end, (w, previous_end)
        previous_end = w.end

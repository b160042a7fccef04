"""Words spread by weight: what a word is, and the invariants every estimate keeps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.words.helpers import assert_valid_words, utterance_words
from voxline.engines.base import GeneratorStream, SynthesisParams, chunk_parts
from voxline.engines.tone import ToneEngine
from voxline.engines.word_estimate import (
    EstimatedWordsStream,
    estimate_words,
    word_spans,
)

NASTY = [
    "Hello, world.",
    "Dr. Smith's U.S. office — call 555-0142 now! Is it 2.5kg?",
    'Well... okay; maybe (not) "quoted" words & more, e.g. etc.',
    "Your order #1249 costs $1,249.50 and ships on 12/03/2026 at 3:30pm.",
    "  leading and trailing spaces  ",
    "don't  can't\twon't\nrock'n'roll",
    "«Bonjour», dit-il. ¿Qué tal? ¡Hola!",
    "你好，世界。こんにちは",
    "a",
    "— … !",
    "",
]


@pytest.mark.parametrize(("text", "words"), [
    ("Hello, world.", ["Hello", "world"]),
    ("(not) \"quoted\", end.", ["not", "quoted", "end"]),
    ("U.S. and e.g. but Dr. and etc.", ["U.S.", "and", "e.g.", "but", "Dr", "and", "etc"]),
    ("call 555-0142 & pay $5, 100% now", ["call", "555-0142", "&", "pay", "$5", "100%", "now"]),
    ("don't stop — ever…", ["don't", "stop", "ever"]),
    ("你好，世界。", ["你", "好", "世", "界"]),
    ("— … !", []),
])
def test_word_spans_are_the_spoken_tokens(text, words):
    assert [text[s:e] for s, e in word_spans(text)] == words


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("total", [0, 1, 7, 22050, 123457])
def test_estimates_cover_the_text_in_order_within_the_utterance(text, total):
    words = list(estimate_words(text, total, "en"))
    assert all(w.estimated for w in words)
    assert_valid_words(text, words, total)
    if words and total >= 22050:
        assert words[0].start > 0 and words[-1].end < total  # lead-in and tail are silence
        assert all(w.end > w.start for w in words)


def test_longer_words_and_numbers_take_longer():
    words = estimate_words("I paid 1249 dollars, then waited.", 100_000)
    length = {w.text: w.end - w.start for w in words}
    assert length["I"] < length["paid"] < length["waited"] < length["1249"]
    gap_at_comma = words[4].start - words[3].end
    plain_gap = words[1].start - words[0].end
    assert gap_at_comma > 3 * plain_gap


def test_a_plain_engine_stream_ends_with_its_words_estimated_over_its_audio():
    engine = ToneEngine(chunk_ms=0.0)
    text = "Tone engines know no words, so they are spread."
    voice = engine.builtin_voices()["tone-a"]
    inner = GeneratorStream(engine.stream(text, voice, "en", SynthesisParams()))
    stream = EstimatedWordsStream(inner, text, "en")
    chunks = []
    while (chunk := stream.step()) is not None:
        chunks.append(chunk)
    assert stream.step() is None
    *audio, last = chunks
    assert all(not chunk_parts(c)[1] for c in audio)
    assert len(last) == 0 and len(last.words) == 9
    words, total = utterance_words(chunks, in_their_chunk=False)
    assert total == sum(len(c) for c in audio) > 0
    assert_valid_words(text, words, total)
    expected = estimate_words(text, total, "en")
    assert [(w.start, w.end) for w in words] == [(w.start, w.end) for w in expected]


def test_a_stream_that_times_its_own_words_passes_through():
    from voxline.engines.base import TimedChunk, Word

    timed = [TimedChunk(np.zeros(10, np.float32), (Word("hi", 2, 8, 0, 2),))]
    stream = EstimatedWordsStream(GeneratorStream(iter(timed)), "hi", "en")
    assert stream.step() is timed[0]
    assert stream.step() is None

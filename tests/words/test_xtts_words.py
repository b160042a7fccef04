"""XTTS on the tiny random-weight checkpoint: the final chunk of every sentence carries its
words, estimated over the sentence's real length, alone and batched through the scheduler."""

from __future__ import annotations

import numpy as np
import pytest

from tests.words.helpers import assert_valid_words, utterance_words
from voxline.engines.base import Clip, SynthesisParams, TimedChunk, Word, chunk_parts
from voxline.engines.piper_words import PhonemeWeightEstimator

pytestmark = pytest.mark.slow
FORCED = SynthesisParams(top_k=1, seed=3, min_new_tokens=24, max_new_tokens=24,
                         stream_chunk_size=10)


@pytest.fixture(scope="module")
def engine(tiny_xtts):
    from voxline.engines.xtts_engine import XttsEngine

    return XttsEngine(tiny_xtts, device="cpu")


@pytest.fixture(scope="module")
def voice(engine):
    rate = 16000
    t = np.arange(3 * rate) / rate
    clip = Clip((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), rate, "sine")
    return engine.compute_conditioning([clip])


@pytest.mark.parametrize("text", ["Hello world, this is a test.",
                                  "Dr. Smith's U.S. office: call 555-0142 now!"])
def test_the_final_chunk_carries_every_word_estimated(engine, voice, text):
    chunks = list(engine.stream(text, voice, "en", FORCED))
    assert len(chunks) == 3  # 24 tokens in chunks of 10
    *early, final = chunks
    assert all(not chunk_parts(c)[1] for c in early)
    assert isinstance(final, TimedChunk) and final.words
    words, total = utterance_words(chunks, in_their_chunk=False)
    assert_valid_words(text, words, total)
    assert all(w.estimated for w in words)
    # Spread over the real length of the whole sentence, counted from the final chunk.
    expected = PhonemeWeightEstimator()(text, total, "en")
    assert [(w.start, w.end) for w in words] == [(w.start, w.end) for w in expected]


def test_the_aligner_is_a_seam(engine, voice):
    def first_half(text, total, language):
        return (Word(text, 0, total // 2, 0, len(text)),)

    default, engine.batcher.aligner = engine.batcher.aligner, first_half
    try:
        chunks = list(engine.stream("Seam.", voice, "en", FORCED))
    finally:
        engine.batcher.aligner = default
    words, total = utterance_words(chunks, in_their_chunk=False)
    assert words == [Word("Seam.", 0, total // 2, 0, 5)]


def test_batched_sentences_each_end_with_their_words(engine, voice):
    import threading

    from voxline.engines.base import Utterance
    from voxline.scheduler import Scheduler

    requests = [["First caller speaks here.", "Then a second sentence."],
                ["Second caller, a bit longer, speaks too.", "And ends."]]
    scheduler = Scheduler(max_queue=4, max_active=4, max_batch=4)
    results: dict[int, list] = {}

    def read(i, handle):
        results[i] = list(handle.timed_chunks())

    threads = []
    for i, texts in enumerate(requests):
        handle = scheduler.submit(f"w{i}", engine, [Utterance(t, voice, "en", FORCED)
                                                     for t in texts])
        threads.append(threading.Thread(target=read, args=(i, handle)))
        threads[-1].start()
    for thread in threads:
        thread.join(120)
    assert scheduler.batched_steps > 0
    for i, texts in enumerate(requests):
        for sentence, text in enumerate(texts):
            chunks = [c for s, c in results[i] if s == sentence]
            words, total = utterance_words(chunks, in_their_chunk=False)
            assert_valid_words(text, words, total)
            assert chunk_parts(chunks[-1])[1]  # the words come with the final chunk

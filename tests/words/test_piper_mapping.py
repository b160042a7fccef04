"""Piper's phonemes back to the words of the text: fake tables for the cases espeak-ng
produces, then real espeak-ng (no voice model needed) on nasty texts."""

from __future__ import annotations

import functools

import pytest

from tests.words.helpers import assert_valid_words, utterance_words
from tests.words.test_estimate import NASTY
from voxline.engines.base import TimedChunk
from voxline.engines.piper_words import (
    PiperWords,
    SentenceTiming,
    phoneme_owners,
    sentence_timing,
)


def table(**words: str):
    """A phonemizer from a table: word -> phoneme string."""
    return lambda batch: [list(words[w]) for w in batch]


@pytest.mark.parametrize(("words", "lexicon", "sentence", "owners"), [
    # espeak merges "in the" into one phoneme word: the split is still exact.
    (["in", "the"], {"in": "ɪn", "the": "ðə"}, "ɪnðə.", [0, 0, 1, 1, -1]),
    # one token read as several words ("555" -> "five hundred").
    (["555", "now"], {"555": "fˈaɪv hˈʌnd", "now": "nˈaʊ"}, "fˈaɪv hˈʌnd nˈaʊ!",
     [0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, -1]),
    # context changes a word ("a" alone is the letter "ˈeɪ"; in a sentence "ə").
    (["a", "cat"], {"a": "ˈeɪ", "cat": "kˈæt"}, "ə kˈæt", [0, -1, 1, 1, 1, 1]),
    # espeak adds a sound inside a word: it stays with that word.
    (["go", "on"], {"go": "ɡˈoʊ", "on": "ɔn"}, "ɡˈoʊw ɔn", [0, 0, 0, 0, 0, -1, 1, 1]),
    # a word espeak does not speak at all owns nothing.
    (["hi", "(sic)", "there"], {"hi": "hˈaɪ", "(sic)": "", "there": "ðˈɛɹ"},
     "hˈaɪ, ðˈɛɹ", [0, 0, 0, 0, -1, -1, 2, 2, 2, 2]),
])
def test_owners_follow_the_words(words, lexicon, sentence, owners):
    assert phoneme_owners(words, [list(sentence)], table(**lexicon)) == [owners]


def test_owners_cross_sentences():
    lexicon = {"Dr.": "dˈɑːktɚ", "Who": "hˈuː"}
    sentences = [list("dˈɑːktɚ."), list("hˈuː?")]
    assert phoneme_owners(["Dr.", "Who"], sentences, table(**lexicon)) == [
        [0, 0, 0, 0, 0, 0, 0, -1], [1, 1, 1, 1, -1]]


def test_sentence_timing_groups_ids_per_phoneme():
    id_map = {"^": [1], "_": [0], "$": [2], "a": [14], "b": [15, 16]}
    # ids: ^ _ | a _ | b b _ | $
    assert sentence_timing(list("ab"), [5, 1, 10, 2, 3, 3, 1, 7], id_map) == \
        SentenceTiming(lead=6, durations=(12, 7))
    assert sentence_timing(list("ab"), [5, 1, 10], id_map) is None  # does not fit
    assert sentence_timing(list("ab"), None, id_map) is None


@functools.cache
def espeak():
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()


def phonemize(text: str) -> list[list[str]]:
    return [s for s in espeak().phonemize("en-us", text) if s]


def flat(words: list[str]) -> list[list[str]]:
    return [[p for s in phonemize(w) for p in s] for w in words]


def chunks_with_fake_durations(text: str, aligned: bool = True) -> list[TimedChunk]:
    """Each phoneme 100 samples, 50 before each sentence: Piper's layout without a model."""
    import numpy as np

    sentences = phonemize(text)
    words = PiperWords(text, sentences, flat)
    chunks = []
    for phonemes in sentences:
        timing = SentenceTiming(50, (100,) * len(phonemes)) if aligned else None
        samples = 50 + 100 * len(phonemes) + 70
        chunks.append(TimedChunk(np.zeros(samples, np.float32),
                                 words.sentence_done(timing, samples)))
    return chunks


@pytest.mark.parametrize("text", NASTY + [
    "Thanks for calling! I can help you change your delivery address, but first I need "
    "your order number, please.",
    "In the U.K., St. Mary's opens at 9 a.m. on Mon. 3rd Jan.",
    "Call 1-800-555-0199 or e-mail help@example.com — it's 24/7.",
    "I.B.M. vs. A.T.&T.: 50% off (approx.) — really?! Yes!!! No...",
    "co-operate re-enter state-of-the-art well—maybe yes/no",
])
@pytest.mark.parametrize("aligned", [True, False])
def test_every_word_gets_a_timing_with_real_espeak(text, aligned):
    chunks = chunks_with_fake_durations(text, aligned)
    words, total = utterance_words(chunks)
    if not chunks:
        assert not text.strip("—… !")
        return
    assert_valid_words(text, words, total)
    assert all(w.estimated is (not aligned) for w in words)


def test_words_land_on_their_own_phonemes():
    text = "Well... okay, in the morning."
    chunks = chunks_with_fake_durations(text)
    words, _ = utterance_words(chunks)
    sentence = "".join(phonemize(text)[0])
    spoken = {w.text: sentence[(w.start - 50) // 100:(w.end - 50) // 100] for w in words}
    assert spoken == {"Well": "wˈɛl", "okay": "oʊkˈeɪ", "in": "ɪn", "the": "ðə",
                      "morning": "mˈɔːɹnɪŋ"}


def test_word_phonemes_asks_once_per_distinct_word():
    from voxline.engines.piper_words import WordPhonemes

    asked: list[list[str]] = []

    def phonemize(words):
        asked.append(list(words))
        return [tuple(w.lower()) for w in words]

    cache = WordPhonemes(phonemize)
    assert cache(["Hi", "there", "Hi"]) == [tuple("hi"), tuple("there"), tuple("hi")]
    assert cache(["there", "you"]) == [tuple("there"), tuple("you")]
    assert asked == [["Hi", "there"], ["you"]]


def test_espeak_words_match_espeak_on_each_word_alone():
    from voxline.engines.piper_words import espeak_words

    words = ["Hello", "don't", "U.S.", "555-0142", "$1,249.50", "e.g.", "&", "—"]
    strip = str.maketrans("", "", " .,;:!?")
    assert ["".join(p).translate(strip) for p in espeak_words(words, "en-us")] == \
        ["".join(p).translate(strip) for p in flat(words)]


@pytest.mark.parametrize(("language", "text"), [
    ("en", NASTY[1]), ("en", NASTY[3]), ("de", "Ihre Bestellung Nr. 4471 kommt am Freitag."),
    ("fr", "«Bonjour», dit-il. Ça coûte 30 €."), ("zh-cn", "你好，世界。"),
    ("ja", "こんにちは、世界。"), ("xx", "An unknown language, weighed by characters."),
])
def test_phoneme_weight_estimates_keep_the_invariants(language, text):
    from voxline.engines.piper_words import PhonemeWeightEstimator

    words = list(PhonemeWeightEstimator()(text, 48_000, language))
    assert all(w.estimated for w in words)
    assert_valid_words(text, words, 48_000)


def test_phoneme_weights_read_numbers_as_words():
    from voxline.engines.piper_words import PhonemeWeightEstimator
    from voxline.engines.word_estimate import estimate_words

    text = "It costs 1249 dollars."
    by_phonemes = PhonemeWeightEstimator()(text, 100_000, "en")
    by_letters = estimate_words(text, 100_000, "en")
    share = [(w[2].end - w[2].start) / 100_000 for w in (by_phonemes, by_letters)]
    assert share[0] > share[1] + 0.1  # "one thousand two hundred and forty nine"

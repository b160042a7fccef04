"""Words through espeak-ng: Piper's exact word timings, and phoneme weights for estimates.

A voice patched for alignments returns the samples each phoneme id lasted. What espeak-ng
does not say is which word of the text a phoneme belongs to: it merges words ("in the" ->
"ɪnðə", "Well... okay" -> "wˈɛloʊkˈeɪ"), splits them ("555-0142" -> five words), reorders
them ("$5" -> "five dollars" is spoken from one token) and reads abbreviations in context
("e.g." -> "for example"). So each word of the text is phonemized alone (`WordPhonemes`,
cached), and that sequence is aligned with the utterance's phonemes (difflib): matching
phonemes take their word; a run that differs is shared out in order among the words it
replaces. Every word then gets a timing (a word espeak skipped gets a zero-length one where
it would have been), in text order, within the utterance.

The same per-word phonemes weigh words for engines without alignments
(`PhonemeWeightEstimator`, XTTS's aligner).
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from voxline.engines.base import Word
from voxline.engines.word_estimate import estimate_words, shift, word_spans

logger = logging.getLogger(__name__)

# Piper's phonemes that are not sounds of a word: espeak's word break and the punctuation
# Piper keeps for prosody. Stress marks are sounds of the word they precede, but espeak
# stresses a word differently in context, so they are left out of the comparison.
BREAKS = frozenset(" .,;:!?¡¿—…\"'()-")
STRESS = frozenset("ˈˌ")
BOS, EOS, PAD = "^", "$", "_"  # piper.const

# Phonemes of each of the given words, spoken alone.
PhonemizeWords = Callable[[Sequence[str]], list[Sequence[str]]]
_LANGUAGE_FLAG = re.compile(r"\([^)]+\)")  # espeak's "(en)" around a switched word


def espeak_words(words: Sequence[str], espeak_voice: str) -> list[tuple[str, ...]]:
    """Each word's phonemes as piper's espeak-ng gives them for the word alone.

    One voice switch for all the words (`voice.phonemize` word by word costs a switch, 0.15
    to 0.35 ms measured, per word), under piper's own espeak lock (espeak-ng has global
    state), post-processed as `EspeakPhonemizer` does: language flags dropped, NFD code
    points; clauses joined by a word break. Raises RuntimeError for a voice espeak-ng lacks.
    """
    from piper import espeakbridge
    from piper import voice as piper_voice
    from piper.phonemize_espeak import EspeakPhonemizer

    with piper_voice._ESPEAK_PHONEMIZER_LOCK:
        if piper_voice._ESPEAK_PHONEMIZER is None:  # initialise espeak-ng as piper would
            piper_voice._ESPEAK_PHONEMIZER = EspeakPhonemizer()
        espeakbridge.set_voice(espeak_voice)
        clauses = [espeakbridge.get_phonemes(w) for w in words]
    return [tuple(unicodedata.normalize(
                "NFD", " ".join(_LANGUAGE_FLAG.sub("", c[0]) for c in word)))
            for word in clauses]


class WordPhonemes:
    """A cache in front of a phonemizer of words: each distinct word is phonemized once (the
    misses of a call in one batch). Safe to share between threads (at worst a word is
    phonemized twice)."""

    def __init__(self, phonemize: Callable[[list[str]], list[tuple[str, ...]]],
                 max_words: int = 50_000) -> None:
        self._phonemize = phonemize
        self._cache: dict[str, tuple[str, ...]] = {}
        self._max_words = max_words

    def __call__(self, words: Sequence[str]) -> list[Sequence[str]]:
        # .get, not `in` then [w]: another thread may clear the cache in between.
        known = {w: p for w in set(words) if (p := self._cache.get(w)) is not None}
        missing = sorted(set(words) - known.keys())
        if missing:
            fresh = dict(zip(missing, self._phonemize(missing), strict=True))
            if len(self._cache) + len(fresh) > self._max_words:
                self._cache.clear()
            self._cache.update(fresh)
            known.update(fresh)
        return [known[w] for w in words]


def voice_word_phonemizer(voice) -> WordPhonemes:
    """Words phonemized as a Piper voice would: espeak-ng in one batch, or, for voices with
    another phonemizer or vowel clusters, `voice.phonemize` word by word."""
    from piper.config import PhonemeType

    config = voice.config
    if config.phoneme_type == PhonemeType.ESPEAK and not config.vowel_clusters:
        return WordPhonemes(lambda words: espeak_words(words, config.espeak_voice))
    return WordPhonemes(lambda words: [tuple(p for s in voice.phonemize(w) for p in s)
                                       for w in words])


# espeak-ng voices of XTTS's languages.
ESPEAK_VOICES = {"en": "en-us", "es": "es", "fr": "fr", "de": "de", "it": "it", "pt": "pt",
                 "pl": "pl", "tr": "tr", "ru": "ru", "nl": "nl", "cs": "cs", "ar": "ar",
                 "zh-cn": "cmn", "zh": "cmn", "ja": "ja", "hu": "hu", "ko": "ko", "hi": "hi"}


class PhonemeWeightEstimator:
    """A `WordAligner` that spreads words by their espeak-ng phoneme count (numbers read as
    words, "e.g." as "for example"); character weights for languages espeak-ng lacks. On
    Piper speech its median start error against Piper's exact timings is 73 ms, against 90
    ms for character weights (bench/word_timing.py)."""

    def __init__(self) -> None:
        self._phonemizers: dict[str, WordPhonemes | None] = {}

    def __call__(self, text: str, total_samples: int, language: str) -> tuple[Word, ...]:
        phonemizer = self._phonemizer(language)
        if phonemizer is None:
            return estimate_words(text, total_samples, language)
        words = [text[s:e] for s, e in word_spans(text)]
        weights = [sum(1 for p in phonemes if _is_sound(p))
                   for phonemes in phonemizer(words)]
        return estimate_words(text, total_samples, language, weights)

    def _phonemizer(self, language: str) -> WordPhonemes | None:
        if language not in self._phonemizers:
            voice = ESPEAK_VOICES.get(language, language)
            phonemizer: WordPhonemes | None = WordPhonemes(
                lambda words: espeak_words(words, voice))
            try:
                phonemizer(["a"])
            except (ImportError, RuntimeError) as exc:
                logger.warning("no espeak-ng voice for %s (%s): words weighed by characters",
                               language, exc)
                phonemizer = None
            self._phonemizers[language] = phonemizer
        return self._phonemizers[language]


@dataclass(frozen=True)
class SentenceTiming:
    """Samples of one synthesised sentence: the silence before its first phoneme, then
    each phoneme's samples (its ids and the padding after them)."""

    lead: int
    durations: tuple[int, ...]


def sentence_timing(phonemes: Sequence[str], id_samples: Sequence[int] | None,
                    id_map: Mapping[str, Sequence[int]]) -> SentenceTiming | None:
    """Group a patched voice's samples per phoneme id into samples per phoneme, the way
    `piper.phonemes_to_ids` laid the ids out (BOS PAD, then each phoneme's ids and PAD, EOS);
    None when the counts do not fit that layout."""
    if id_samples is None:
        return None
    pad = len(id_map.get(PAD, ()))
    position = len(id_map.get(BOS, ())) + pad
    lead = int(sum(id_samples[:position]))
    durations = []
    for phoneme in phonemes:
        ids = id_map.get(phoneme)
        width = len(ids) + pad if ids else 0  # piper drops phonemes missing from the map
        durations.append(int(sum(id_samples[position:position + width])))
        position += width
    if position + len(id_map.get(EOS, ())) != len(id_samples):
        logger.warning("phoneme alignments do not fit the phoneme ids; words estimated")
        return None
    return SentenceTiming(lead, tuple(durations))


def _is_sound(phoneme: str) -> bool:
    return phoneme not in BREAKS and phoneme not in STRESS


def phoneme_owners(words: Sequence[str], sentences: Sequence[Sequence[str]],
                   phonemize_words: PhonemizeWords) -> list[list[int]]:
    """For each phoneme of each sentence, the index of the word (in `words`) it speaks, or -1
    for breaks, punctuation and sounds that belong to no word."""
    expected: list[str] = []
    expected_owner: list[int] = []
    for index, phonemes in enumerate(phonemize_words(words)):
        sounds = [p for p in phonemes if _is_sound(p)]
        expected.extend(sounds)
        expected_owner.extend([index] * len(sounds))
    positions = [(s, k) for s, phonemes in enumerate(sentences)
                 for k, p in enumerate(phonemes) if _is_sound(p)]
    actual = [sentences[s][k] for s, k in positions]
    owner = [-1] * len(actual)
    matcher = difflib.SequenceMatcher(None, expected, actual, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            owner[j1:j2] = expected_owner[i1:i2]
        elif tag == "replace":  # share the run out in order among the words it replaces
            for j in range(j1, j2):
                owner[j] = expected_owner[i1 + (j - j1) * (i2 - i1) // (j2 - j1)]
    owners = [[-1] * len(phonemes) for phonemes in sentences]
    for (s, k), o in zip(positions, owner, strict=True):
        owners[s][k] = o
    for sentence, row in zip(sentences, owners, strict=True):
        _fill_within_words(sentence, row)
    return owners


def _fill_within_words(phonemes: Sequence[str], owners: list[int]) -> None:
    """Give unmatched sounds and stress marks the word of their neighbour inside the same
    espeak word (the previous sound's, else the next's); breaks stay -1."""
    start = 0
    while start < len(phonemes):
        end = start
        while end < len(phonemes) and phonemes[end] not in BREAKS:
            end += 1
        known = [o for o in owners[start:end] if o >= 0]
        if known:
            current = known[0]
            for k in range(start, end):
                if owners[k] >= 0:
                    current = owners[k]
                elif phonemes[k] in STRESS:  # a stress mark belongs to what follows it
                    following = next((o for o in owners[k + 1:end] if o >= 0), current)
                    owners[k] = following
                else:
                    owners[k] = current
        start = end + 1


class PiperWords:
    """The words of one utterance, timed sentence by sentence as Piper synthesises them."""

    def __init__(self, text: str, sentences: Sequence[Sequence[str]],
                 phonemize_words: PhonemizeWords) -> None:
        self._text = text
        self._spans = word_spans(text)
        owners = phoneme_owners([text[s:e] for s, e in self._spans], sentences, phonemize_words)
        # First and last (sentence, phoneme) of each word; unspoken words borrow a neighbour's.
        firsts: dict[int, tuple[int, int]] = {}
        lasts: dict[int, tuple[int, int]] = {}
        for s, row in enumerate(owners):
            for k, o in enumerate(row):
                if o >= 0:
                    firsts.setdefault(o, (s, k))
                    lasts[o] = (s, k)
        self._owners = owners
        self._bounds = _bounds_for_all(len(self._spans), firsts, lasts)
        self._starts: list[list[int]] = []  # utterance sample where each phoneme starts
        self._ends: list[list[int]] = []
        self._offset = 0  # samples of the sentences before
        self._next_word = 0

    def sentence_done(self, timing: SentenceTiming | None, samples: int) -> tuple[Word, ...]:
        """Record the next sentence's timing (`samples` long); return the words whose last
        sound is in it, relative to its first sample (estimated when `timing` is None)."""
        s = len(self._starts)
        if timing is None:
            timing = SentenceTiming(0, (0,) * len(self._owners[s]))
            estimated = True
        else:
            estimated = False
        position = self._offset + timing.lead
        starts, ends = [], []
        for duration in timing.durations:
            starts.append(min(position, self._offset + samples))
            position += duration
            ends.append(min(position, self._offset + samples))
        self._starts.append(starts)
        self._ends.append(ends)
        done = []
        while (self._next_word < len(self._spans)
               and self._bounds[self._next_word][2][0] <= s):
            done.append(self._next_word)
            self._next_word += 1
        words = [self._word(w) for w in done]
        chunk_words = shift(words, self._offset)
        if estimated and words:
            chunk_words = estimate_sentence(self._text, [self._spans[w] for w in done], samples)
        self._offset += samples
        return chunk_words

    def _word(self, index: int) -> Word:
        start, end = self._spans[index]
        zero_at_end, (fs, fk), (ls, lk) = self._bounds[index]
        if zero_at_end is None:
            first, last = self._starts[fs][fk], self._ends[ls][lk]
        else:  # unspoken: a zero-length word at the end (or start) of its neighbour
            first = last = self._ends[ls][lk] if zero_at_end else self._starts[fs][fk]
        return Word(self._text[start:end], first, max(first, last), start, end)


class EstimatedWords:
    """The words of one utterance without Piper's mapping (it failed): shared out among its
    sentences in proportion to their sounds, then spread over each sentence's audio."""

    def __init__(self, text: str, sentences: Sequence[Sequence[str]]) -> None:
        self._text = text
        self._spans = word_spans(text)
        sounds = list(accumulate(sum(1 for p in s if _is_sound(p)) for s in sentences))
        total = sounds[-1] if sounds else 0
        # Words up to (not including) this index are spoken by the end of each sentence.
        self._ends = [len(self._spans) * n // total if total else len(self._spans)
                      for n in sounds]
        self._sentence = 0
        self._next_word = 0

    def sentence_done(self, timing: SentenceTiming | None, samples: int) -> tuple[Word, ...]:
        """The next sentence's words (`samples` long), estimated; `timing` is not used."""
        last = self._sentence >= len(self._ends) - 1
        end = len(self._spans) if last else max(self._next_word, self._ends[self._sentence])
        spans = self._spans[self._next_word:end]
        self._sentence += 1
        self._next_word = end
        return estimate_sentence(self._text, spans, samples)


def estimate_sentence(text: str, spans: Sequence[tuple[int, int]],
                      samples: int) -> tuple[Word, ...]:
    """The words at `spans` of `text` (one sentence's) spread over its `samples` by weight;
    none when the slice of text does not split into those words."""
    if not spans:
        return ()
    begin, finish = spans[0][0], spans[-1][1]
    guessed = estimate_words(text[begin:finish], samples)
    if len(guessed) != len(spans):
        return ()
    return tuple(Word(w.text, w.start, w.end, w.char_start + begin, w.char_end + begin,
                      estimated=True) for w in guessed)


Bound = tuple[bool | None, tuple[int, int], tuple[int, int]]


def _bounds_for_all(count: int, firsts: dict[int, tuple[int, int]],
                    lasts: dict[int, tuple[int, int]]) -> list[Bound]:
    """Per word: (None, first, last) phoneme positions for a spoken word; for one espeak did
    not speak, (True, p, p) at the end of the previous spoken word, or (False, p, p) at the
    start of the next one."""
    bounds: list[Bound] = []
    previous: tuple[int, int] | None = None
    for w in range(count):
        if w in firsts:
            bounds.append((None, firsts[w], lasts[w]))
            previous = lasts[w]
        elif previous is not None:
            bounds.append((True, previous, previous))
        else:
            following = next((firsts[v] for v in range(w + 1, count) if v in firsts), None)
            position = following if following is not None else (0, 0)
            bounds.append((False, position, position))
    return bounds

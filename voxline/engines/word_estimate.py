"""Words of an utterance and where they sound, for engines that do not measure it.

`word_spans` says what a word of the text is (every engine's timings use it, so they agree on
the words). `estimate_words` spreads the words over the utterance's real duration by weight,
with pauses at punctuation: each word's phoneme count when the caller has one
(`piper_words.PhonemeWeightEstimator`, espeak-ng), else its characters, digits and spoken
symbols heavier. The utterance's boundaries are exact; the words inside are estimates
(`Word.estimated`). The constants were checked against Piper's exact timings
(bench/word_timing.py).

Where the words go: a `WordAligner` takes the text and the utterance's duration. XTTS calls
one when it produces an utterance's final chunk (`xtts_batch`); a model-derived alignment
(e.g. from the GPT's text attention) would be another `WordAligner`, given what it needs by the
stream that calls it. Engines that yield plain arrays get theirs through
`EstimatedWordsStream`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from voxline.engines.base import EngineStream, TimedChunk, Word, chunk_parts

# A token is a run of non-space characters, except that CJK ideographs and kana (written
# without spaces) are a word each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
# Symbols a speech front end reads aloud ("&" -> "and", "%" -> "percent").
_SPOKEN_SYMBOLS = frozenset("&%@#$€£¥+=§°")
_OPENERS = frozenset("\"'([{<«‹“‘„¿¡*_`")
_CLOSERS = frozenset("\"')]}>»›”’.,;:!?…*_`")


def word_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the spoken words of `text`: whitespace-separated tokens
    that hold a letter, digit or spoken symbol, without the quotes, brackets and punctuation
    around them ("(not)," -> "not"; an initialism keeps its last dot: "U.S.")."""
    spans = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if not any(c.isalnum() or c in _SPOKEN_SYMBOLS for c in match.group()):
            continue
        while text[start] in _OPENERS:
            start += 1
        while text[end - 1] in _CLOSERS:
            end -= 1
        if end < match.end() and text[end] == "." and "." in text[start:end]:
            end += 1  # "U.S." and "e.g." keep their final dot
        spans.append((start, end))
    return spans


class WordAligner(Protocol):
    """Where the words of `text` sound in an utterance of `total_samples` samples: samples from
    the utterance's start, monotonic, within [0, total_samples]."""

    def __call__(self, text: str, total_samples: int, language: str) -> tuple[Word, ...]: ...


# Weights in "letters" (about one phoneme) of speaking time, checked against Piper's exact
# timings (joe, en-us; a grid search over them gained nothing on held-out replies); the
# lead-in and tail are the silence an utterance has.
LETTER = 1.0
DIGIT = 3.0  # "7" is "seven"; numbers read as words run longer still
SYMBOL = 4.0  # "&", "%", "$"
IDEOGRAPH = 3.0  # one CJK character is a syllable or more
WORD_GAP = 0.6
PAUSES = {",": 3.0, ";": 3.5, ":": 3.5, "—": 3.0, "–": 3.0, "…": 4.0,
          ".": 4.5, "!": 4.5, "?": 4.5}
LEAD_IN = 0.6
TAIL = 2.0


def _weight(word: str) -> float:
    weight = 0.0
    for c in word:
        if c.isdigit():
            weight += DIGIT
        elif c in _SPOKEN_SYMBOLS:
            weight += SYMBOL
        elif "\u3040" <= c <= "\ufaff":
            weight += IDEOGRAPH
        elif c.isalpha():
            weight += LETTER
    return max(weight, LETTER)


def _gap(between: str) -> float:
    """The pause after a word, from the text between it and the next word."""
    pauses = [PAUSES[c] for c in between if c in PAUSES]
    return WORD_GAP + (max(pauses) if pauses else 0.0)


def estimate_words(text: str, total_samples: int, language: str = "en",
                   weights: Sequence[float] | None = None) -> tuple[Word, ...]:
    """The words of `text` spread by weight over an utterance of `total_samples` samples
    (estimated=True): the first starts at or after 0, the last ends at or before the total.
    `weights`: one per word of `word_spans(text)` in letters' time (e.g. phoneme counts);
    by default the characters decide. `language` is for the `WordAligner` signature."""
    spans = word_spans(text)
    if not spans:
        return ()
    if weights is None or len(weights) != len(spans):
        weights = [_weight(text[start:end]) for start, end in spans]
    # Alternate pauses and words: lead-in, word, gap, word, ..., word, tail.
    pieces = [LEAD_IN]
    for i, ((_, end), weight) in enumerate(zip(spans, weights, strict=True)):
        pieces.append(max(float(weight), LETTER))
        following = text[end:spans[i + 1][0]] if i + 1 < len(spans) else text[end:]
        pieces.append(_gap(following) if i + 1 < len(spans) else TAIL)
    edges = np.concatenate(([0.0], np.cumsum(pieces)))
    positions = np.round(edges * (max(total_samples, 0) / edges[-1])).astype(int)
    return tuple(
        Word(text[start:end], int(positions[2 * i + 1]), int(positions[2 * i + 2]), start, end,
             estimated=True)
        for i, (start, end) in enumerate(spans)
    )


def shift(words: Iterable[Word], offset: int) -> tuple[Word, ...]:
    """The same words with their samples counted from `offset` (a chunk's first sample)."""
    return tuple(dataclasses.replace(w, start=w.start - offset, end=w.end - offset)
                 for w in words)


class EstimatedWordsStream(EngineStream):
    """An engine stream of plain arrays, then one zero-length `TimedChunk` with the words
    estimated over all of its audio (start/end negative: counted from the end).

    The words come last because the utterance's length is known only then; each one is still
    reported after its audio. A stream that times its own words (yields `TimedChunk`s with
    words) passes through unchanged. Only for streams that step alone: a batcher would not
    know this wrapper.
    """

    def __init__(self, inner: EngineStream, text: str, language: str,
                 aligner: WordAligner = estimate_words) -> None:
        self._inner = inner
        self._text = text
        self._language = language
        self._aligner = aligner
        self._samples = 0
        self._timed = False
        self._done = False

    def step(self) -> np.ndarray | TimedChunk | None:
        if self._done:
            return None
        chunk = self._inner.step()
        if chunk is None:
            self._done = True
            if self._timed:
                return None
            words = self._aligner(self._text, self._samples, self._language)
            return TimedChunk(np.zeros(0, dtype=np.float32), shift(words, self._samples))
        samples, words = chunk_parts(chunk)
        self._samples += len(samples)
        self._timed = self._timed or bool(words)
        return chunk

    def close(self) -> None:
        self._inner.close()


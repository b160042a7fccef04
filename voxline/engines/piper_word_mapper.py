"""Piper's word mapping off the path to the first audio: it runs while the model renders.

Building `PiperWords` phonemizes each new word of an utterance with espeak-ng and aligns them
with the utterance's phonemes (about 1.6 ms per sentence with no word cached, bench/RESULTS.md).
Done before the first model run, all of it delays the first audio. `WordMapper` starts it on
a shared background thread as the first sentence goes to the model (onnxruntime releases the
GIL while it runs; espeak-ng runs under piper's lock), and `WordsInFlight` joins it when that
sentence's audio is ready. A mapping that fails, or is not done within a bounded wait, costs
the words their exact timings, never the audio: `EstimatedWords` spreads them instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from voxline.engines.base import Word
from voxline.engines.piper_words import (
    EstimatedWords,
    PhonemizeWords,
    PiperWords,
    SentenceTiming,
)

logger = logging.getLogger(__name__)

MAPPING_WAIT_S = 2.0  # a mapping takes milliseconds; one still running after this is stuck


class WordsInFlight:
    """One utterance's words while its mapping is built in the background: the first
    `sentence_done` waits for it (at most `wait_s`), with estimated words if it failed."""

    def __init__(self, mapping: Future[PiperWords], text: str,
                 sentences: Sequence[Sequence[str]], wait_s: float) -> None:
        self._mapping = mapping
        self._text = text
        self._sentences = sentences
        self._wait_s = wait_s
        self._words: PiperWords | EstimatedWords | None = None

    def sentence_done(self, timing: SentenceTiming | None, samples: int) -> tuple[Word, ...]:
        """As `PiperWords.sentence_done`, once the mapping is in."""
        return self._joined().sentence_done(timing, samples)

    def cancel(self) -> None:
        """Drop the mapping if it has not started yet (the stream was closed early)."""
        self._mapping.cancel()

    def _joined(self) -> PiperWords | EstimatedWords:
        if self._words is None:
            try:
                self._words = self._mapping.result(timeout=self._wait_s)
            except TimeoutError:
                self._mapping.cancel()
                logger.warning("word mapping not done after %.1f s; words estimated",
                               self._wait_s)
            except Exception:  # noqa: BLE001 - the audio goes on, with estimated words
                logger.warning("word mapping failed; words estimated", exc_info=True)
            if self._words is None:
                self._words = EstimatedWords(self._text, self._sentences)
        return self._words


class WordMapper:
    """Builds utterances' `PiperWords` on a few shared threads (one per parallel render);
    idle threads end when the mapper is dropped."""

    def __init__(self, phonemize_words: PhonemizeWords, workers: int,
                 wait_s: float = MAPPING_WAIT_S) -> None:
        self._phonemize_words = phonemize_words
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="piper-words")
        self._wait_s = wait_s

    def start(self, text: str, sentences: Sequence[Sequence[str]]) -> WordsInFlight:
        """Begin mapping `sentences` (the phonemes of `text`) to the words of `text`."""
        mapping = self._pool.submit(PiperWords, text, sentences, self._phonemize_words)
        return WordsInFlight(mapping, text, sentences, self._wait_s)

"""Word timings of a render: engine words (samples, utterance offsets) turned into marks on the
render's audio timeline with offsets into the text the client sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voxline.engines.base import Word


@dataclass(frozen=True)
class WordMark:
    """One word as a client sees it: milliseconds on the audio timeline and the span of the
    client's text it came from."""

    word: str
    start_ms: float
    end_ms: float
    text_start: int
    text_end: int
    estimated: bool = False

    def describe(self, offset_ms: float = 0.0, text_offset: int = 0) -> dict[str, Any]:
        return {
            "word": self.word,
            "start_ms": round(self.start_ms + offset_ms, 1),
            "end_ms": round(self.end_ms + offset_ms, 1),
            "text_start": self.text_start + text_offset,
            "text_end": self.text_end + text_offset,
        }


class WordClock:
    """Places an engine's words of each line (utterance) on the render's timeline.

    `lines[i]` is utterance i: `to_source(start, end)` maps its characters back to the
    client's text."""

    def __init__(self, lines: Sequence[Any], rate: int) -> None:
        self.lines = lines
        self.rate = rate

    def marks(self, sentence: int, chunk_start: int, words: Sequence[Word]) -> list[WordMark]:
        """Marks for `words` of a chunk that starts at sample `chunk_start` of the render."""
        if not 0 <= sentence < len(self.lines):
            return []
        line = self.lines[sentence]
        marks = []
        for word in words:
            start = max(0, chunk_start + word.start)
            end = max(start, chunk_start + word.end)
            text_start, text_end = line.to_source(word.char_start, word.char_end)
            marks.append(WordMark(word.text, start * 1000 / self.rate, end * 1000 / self.rate,
                                  text_start, text_end, word.estimated))
        return marks


def sentence_offsets(text: str, sentences: Sequence[str]) -> tuple[int, ...]:
    """Where each sentence starts in `text` (sentences are taken from it in order; one whose
    whitespace was rewritten is found by its first word)."""
    offsets, cursor = [], 0
    for sentence in sentences:
        found = text.find(sentence, cursor)
        if found < 0:
            head = sentence.split()[0] if sentence.split() else sentence
            found = text.find(head, cursor)
        found = cursor if found < 0 else found
        offsets.append(found)
        cursor = found + min(len(sentence), max(1, len(text) - found))
    return tuple(offsets)

"""Words on their way to being spoken, each remembering the source characters it came from."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

_TOKEN = re.compile(r"\S+")
_PUNCTUATION = re.compile(r"[^\w\s]+")


@dataclass(frozen=True)
class Word:
    """One word to say (or espeak phonemes, kind "phonemes") from source [src_start, src_end).

    A frozen word is already in spoken form (an alias, a spelled code): later stages keep it.
    """

    text: str
    src_start: int
    src_end: int
    frozen: bool = False
    kind: str = "word"


class SourceText:
    """A stretch of text to speak with, for each character, the source range it came from.

    Plain text maps to itself (shifted by `offset`); text taken out of an SSML document passes
    the per-character ranges (an entity such as `&amp;` is one character from five).
    """

    def __init__(self, text: str, offset: int = 0,
                 starts: Sequence[int] | None = None, ends: Sequence[int] | None = None) -> None:
        self.text = text
        self._offset = offset
        self._starts = starts
        self._ends = ends

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Source range of the characters [start, end) (end > start)."""
        if self._starts is None or self._ends is None:
            return start + self._offset, end + self._offset
        return self._starts[start], self._ends[end - 1]


@dataclass(frozen=True)
class Rule:
    """A rewrite: where `pattern` matches, `render(match, src_start, src_end)` gives the words,
    or None to leave that match to later rules."""

    name: str
    pattern: re.Pattern[str]
    render: Callable[[re.Match[str], int, int], list[Word] | None]


def split_words(source: SourceText, start: int = 0, end: int | None = None) -> list[Word]:
    """The whitespace-separated words of source[start:end], each mapped to itself."""
    end = len(source.text) if end is None else end
    return [Word(m.group(), *source.span(m.start(), m.end()))
            for m in _TOKEN.finditer(source.text, start, end)]


def rewrite(source: SourceText, rules: Sequence[Rule]) -> list[Word]:
    """Words of `source` with each rule applied, in priority order, to what earlier ones left."""
    return _rewrite(source, 0, len(source.text), tuple(rules))


def _rewrite(source: SourceText, start: int, end: int, rules: tuple[Rule, ...]) -> list[Word]:
    if start >= end:
        return []
    if not rules:
        return split_words(source, start, end)
    rule, rest = rules[0], rules[1:]
    words: list[Word] = []
    position = start
    for match in rule.pattern.finditer(source.text, start, end):
        if match.end() == match.start():
            continue
        rendered = rule.render(match, *source.span(match.start(), match.end()))
        if rendered is None:
            continue
        words += _rewrite(source, position, match.start(), rest)
        words += rendered
        position = match.end()
        # Punctuation right after a rewritten match ("K7-42B.") stays on its last word.
        glued = _PUNCTUATION.match(source.text, position, end)
        if glued and words:
            words[-1] = replace(words[-1], text=words[-1].text + glued.group(),
                                src_end=source.span(glued.start(), glued.end())[1])
            position = glued.end()
    words += _rewrite(source, position, end, rest)
    return words



def frozen(texts: Sequence[str], src_start: int, src_end: int) -> list[Word]:
    """Words already in spoken form, all from the same source range."""
    return [Word(t, src_start, src_end, frozen=True) for t in texts if t]

"""Split prompt text into sentences small enough to synthesise one at a time."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_MIN_CHARS = 20


def split_sentences(text: str, max_chars: int = 250) -> list[str]:
    """Cut text at sentence ends, merge fragments shorter than 20 characters, cap the length."""
    text = " ".join(text.split())
    if not text:
        return []
    merged: list[str] = []
    for piece in _SENTENCE_END.split(text):
        if merged and len(merged[-1]) < _MIN_CHARS and len(merged[-1]) + len(piece) < max_chars:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    out: list[str] = []
    for sentence in merged:
        out.extend(_cap(sentence, max_chars))
    return out


def _cap(sentence: str, max_chars: int) -> list[str]:
    """Break an over-long sentence at clause ends, then at spaces, then anywhere."""
    if len(sentence) <= max_chars:
        return [sentence]
    parts: list[str] = []
    current = ""
    for word in _words(sentence, max_chars):
        if current and len(current) + 1 + len(word) > max_chars:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        parts.append(current)
    return parts


def _words(sentence: str, max_chars: int) -> list[str]:
    """Clauses when they fit, otherwise words, hard-cut at max_chars."""
    out: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        pieces = [clause] if len(clause) <= max_chars else clause.split(" ")
        for piece in pieces:
            out.extend(piece[i : i + max_chars] for i in range(0, len(piece), max_chars))
    return out

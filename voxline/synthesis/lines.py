"""Lines: what the front end says to speak, cut into the utterances an engine takes.

Each line is one engine call: its text (words, or `[[phonemes]]` for engines that take them),
the silence before it (SSML breaks, exact to the sample in the render), a speed factor (SSML
prosody rate) and spans from its characters back to the request's text (word timings).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxline.synthesis.frontend import Piece, Span, Spoken
from voxline.synthesis.words import sentence_offsets
from voxline.text import split_text


@dataclass(frozen=True)
class Line:
    """One utterance of a plan."""

    text: str
    spans: tuple[Span, ...]  # over `text`; source offsets index the request's text
    pause_ms: float = 0.0  # silence before this line
    rate: float | None = None  # speed factor on top of the request's speed

    def to_source(self, start: int, end: int) -> tuple[int, int]:
        """The source span of the line's characters [start, end): the spans it touches, or
        the nearest span before it."""
        touched = [s for s in self.spans if s.start < end and s.end > start]
        if not touched:
            before = [s for s in self.spans if s.start <= start] or list(self.spans[:1])
            if not before:
                return 0, 0
            touched = before[-1:]
        return min(s.src_start for s in touched), max(s.src_end for s in touched)


def plan_lines(spoken: Spoken, limit: int, language: str) -> tuple[tuple[Line, ...], float]:
    """The lines of `spoken` (text pieces split into sentences of at most `limit`
    characters), and the silence after the last one."""
    lines: list[Line] = []
    pause = 0.0
    for piece in spoken.pieces:
        if piece.kind == "break":
            pause += piece.break_ms
            continue
        for line in _piece_lines(piece, limit, language):
            if not speakable(line.text):
                continue  # "…" on its own: nothing for an engine to say (its pause stays)
            lines.append(Line(line.text, line.spans, pause, piece.rate))
            pause = 0.0
    return tuple(lines), pause


def speakable(text: str) -> bool:
    """Whether `text` holds anything an engine can say (a letter or digit, in any script, or
    phonemes)."""
    return text.startswith("[[") or any(c.isalnum() for c in text)


def _piece_lines(piece: Piece, limit: int, language: str) -> list[Line]:
    if piece.kind == "phonemes":
        shifted = tuple(Span(s.start + 2, s.end + 2, s.src_start, s.src_end) for s in piece.spans)
        return [Line(f"[[{piece.text}]]", shifted)]
    sentences = split_text(piece.text, limit, language)
    lines = []
    for sentence, offset in zip(sentences, sentence_offsets(piece.text, sentences), strict=True):
        end = offset + len(sentence)
        spans = tuple(Span(s.start - offset, s.end - offset, s.src_start, s.src_end)
                      for s in piece.spans if s.start >= offset and s.end <= end)
        lines.append(Line(sentence, spans))
    return lines


def identity_spoken(text: str) -> Spoken:
    """`text` spoken as written: each word maps to itself (no front end)."""
    spans, offset = [], 0
    for word in text.split():
        start = text.index(word, offset)
        spans.append(Span(start, start + len(word), start, start + len(word)))
        offset = start + len(word)
    return Spoken((Piece("text", text, spans=tuple(spans)),))

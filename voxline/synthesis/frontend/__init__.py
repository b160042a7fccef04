"""The text front end: request text (plain or SSML) into what is spoken, mapped to its source.

    front_end = FrontEnd(Normalizers(cache_dir / "frontend"), LexiconStore(lexicons_dir))
    front_end.normalizers.prepare(["en"])          # compiles/loads in the background
    spoken = front_end.process(text, language="en", text_type="ssml", phonemes=True)

Order per stretch of text: pronunciation lexicons, then (when normalising) the rewrites of
`rules.py`, then NeMo's grammar on the sentences that need it. Thread-safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from voxline.synthesis.errors import InvalidRequest, NoSpeakableText
from voxline.synthesis.frontend.grammar import grammar_language
from voxline.synthesis.frontend.lexicon import LexiconStore
from voxline.synthesis.frontend.normalize import Normalizers, normalize_words
from voxline.synthesis.frontend.rules import rules_for
from voxline.synthesis.frontend.sayas import say_as
from voxline.synthesis.frontend.spoken import Piece, Span, Spoken
from voxline.synthesis.frontend.ssml import Segment, parse_ssml
from voxline.synthesis.frontend.words import Rule, SourceText, Word, frozen, rewrite

__all__ = ["FrontEnd", "LexiconStore", "Normalizers", "Piece", "Span", "Spoken"]

TEXT_TYPES = ("text", "ssml")
_SPEAKABLE = re.compile(r"\w")
_SENTENCE_END = (".", "!", "?", "…", ";", ":")


class FrontEnd:
    """Normalisers and lexicons shared by every request; `process` is one request's text."""

    def __init__(self, normalizers: Normalizers, lexicons: LexiconStore) -> None:
        self.normalizers = normalizers
        self.lexicons = lexicons

    def process(self, text: str, *, language: str, text_type: str = "text",
                normalize: bool = True, phonemes: bool = False,
                lexicon_names: Sequence[str] | None = None) -> Spoken:
        """What to say for `text`. `phonemes`: the engine takes espeak (IPA) phonemes, so SSML
        <phoneme> and lexicon phonemes are used (else <phoneme> is a 400 unsupported_ssml and
        lexicon phonemes fall back to their alias). Raises InvalidRequest, TooLarge,
        UnknownLexicon, NoSpeakableText."""
        if text_type not in TEXT_TYPES:
            raise InvalidRequest("invalid_text_type", f"text_type is one of {TEXT_TYPES}",
                                 "text_type")
        segments = (parse_ssml(text, phonemes=phonemes) if text_type == "ssml"
                    else [Segment("text", SourceText(text))])
        code = grammar_language(language)
        lexicon = self.lexicons.rule(code, lexicon_names, phonemes)
        rules = ((lexicon,) if lexicon else ()) + (rules_for(code) if normalize else ())
        grammar = self.normalizers.get(code) if normalize else None
        builder = _PieceBuilder()
        for segment in segments:
            if segment.kind == "break":
                builder.add_break(segment.break_ms)
            elif segment.kind == "boundary":
                builder.end_sentence()
            else:
                words = _segment_words(segment, code, rules, normalize)
                builder.add_words(normalize_words(words, grammar), segment.rate)
        # Punctuation alone is not spoken; an SSML break alone is (as silence).
        pieces = tuple(p for p in builder.finish() if p.kind != "text" or _SPEAKABLE.search(p.text))
        if not pieces:
            raise NoSpeakableText()
        return Spoken(pieces)


def _segment_words(segment: Segment, language: str, rules: tuple[Rule, ...],
                   normalize: bool) -> list[Word]:
    source = segment.source
    assert source is not None
    whole = source.span(0, len(source.text)) if source.text else (0, 0)
    if segment.kind == "phonemes":
        return [Word(segment.ph or "", *whole, frozen=True, kind="phonemes")]
    if segment.alias is not None:
        return frozen(segment.alias.split(), *whole)
    if segment.say_as is not None and normalize:
        return say_as(source, segment.say_as, segment.format, language)
    return rewrite(source, rules)


class _PieceBuilder:
    """Words into pieces: a new piece at each break, phoneme run, or change of rate."""

    def __init__(self) -> None:
        self._pieces: list[Piece] = []
        self._words: list[Word] = []
        self._kind = "text"
        self._rate: float | None = None

    def add_words(self, words: list[Word], rate: float | None) -> None:
        for word in words:
            if not word.text:
                continue
            kind = "phonemes" if word.kind == "phonemes" else "text"
            if self._words and (kind != self._kind or rate != self._rate):
                self._flush()
            self._kind, self._rate = kind, rate
            self._words.append(word)

    def add_break(self, ms: float) -> None:
        self._flush()
        if ms > 0:
            self._pieces.append(Piece("break", break_ms=ms))

    def end_sentence(self) -> None:
        """Close an SSML <s>/<p>: its last word gets a full stop if it has no end mark."""
        if self._words and self._kind == "text" and not self._words[-1].text.endswith(
                _SENTENCE_END):
            self._words[-1] = replace(self._words[-1], text=self._words[-1].text + ".")
        self._flush()

    def finish(self) -> tuple[Piece, ...]:
        self._flush()
        return tuple(self._pieces)

    def _flush(self) -> None:
        if not self._words:
            return
        spans, offset = [], 0
        for word in self._words:
            spans.append(Span(offset, offset + len(word.text), word.src_start, word.src_end))
            offset += len(word.text) + 1
        text = " ".join(w.text for w in self._words)
        self._pieces.append(Piece(self._kind, text, spans=tuple(spans), rate=self._rate))
        self._words = []

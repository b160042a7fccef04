"""What the front end hands on: pieces to speak in order, each word mapped to its source."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Spoken characters [start, end) of a piece came from source [src_start, src_end)."""

    start: int
    end: int
    src_start: int
    src_end: int


@dataclass(frozen=True)
class Piece:
    """One stretch of output, in speaking order: words, espeak (IPA) phonemes, or silence."""

    kind: str  # "text" | "phonemes" | "break"
    text: str = ""
    break_ms: float = 0
    spans: tuple[Span, ...] = ()
    rate: float | None = None  # SSML prosody rate as a speed multiplier; None: the request's


@dataclass(frozen=True)
class Spoken:
    """The whole of what will be said for one request."""

    pieces: tuple[Piece, ...]

    @property
    def text(self) -> str:
        """What is said, pieces joined by spaces (a break is just the space), for previews."""
        return " ".join(_shown(p) for p in self.pieces if p.kind != "break")

    @property
    def key(self) -> str:
        """Everything that changes the audio (break lengths and rates too): for cache keys."""
        parts = []
        for p in self.pieces:
            if p.kind == "break":
                parts.append(f"<break {p.break_ms:g}ms>")
            else:
                rate = "" if p.rate is None else f"<rate {p.rate:g}>"
                parts.append(rate + _shown(p))
        return " ".join(parts)

    def describe(self) -> dict:
        """The preview endpoint's body: spoken text, spans in its offsets, and the pieces."""
        spans, offset = [], 0
        for p in self.pieces:
            if p.kind == "break":
                continue
            shift = offset + (2 if p.kind == "phonemes" else 0)  # past "[["
            spans.extend(
                {"spoken": [s.start + shift, s.end + shift], "source": [s.src_start, s.src_end]}
                for s in p.spans
            )
            offset += len(_shown(p)) + 1
        pieces = [_piece_json(p) for p in self.pieces]
        return {"spoken": self.text, "spans": spans, "pieces": pieces}


def _shown(piece: Piece) -> str:
    """Phonemes read as espeak's inline notation `[[...]]`, so they never look like words."""
    return f"[[{piece.text}]]" if piece.kind == "phonemes" else piece.text


def _piece_json(piece: Piece) -> dict:
    body: dict = {"kind": piece.kind}
    if piece.kind == "break":
        body["break_ms"] = piece.break_ms
    else:
        body["text"] = piece.text
        body["spans"] = [[s.start, s.end, s.src_start, s.src_end] for s in piece.spans]
    if piece.rate is not None:
        body["rate"] = piece.rate
    return body

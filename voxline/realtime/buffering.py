"""When to cut buffered text into a segment to synthesise: one pure decision, used everywhere.

Rules, in order (the caller asks again after every delta, flush, end and timeout):

1. A complete sentence (pysbd, through `voxline.text`): up to its end. The last sentence of the
   buffer counts as complete only once text follows it, so "Mr." or "3." do not cut early.
2. `flush` or `end`: everything else buffered.
3. The first segment of a context: at the last clause break (`,;:` or a dash, then a space)
   once `FIRST_CLAUSE_CHARS` are buffered, to cut the time to first audio. Later segments wait
   for whole sentences (better prosody; the audio of earlier ones covers the wait).
4. No new text for `max_delay_ms`: everything buffered (an LLM that stalls mid-sentence).
5. More than `max_chars` without a sentence end: the last clause break or space within them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxline.text import split_text

FIRST_CLAUSE_CHARS = 40
MAX_SEGMENT_CHARS = 250
_CLAUSE = re.compile(r"[,;:\u2013\u2014](?=\s)|\s[-\u2013\u2014](?=\s)")
_NO_LIMIT = 10**9


@dataclass(frozen=True)
class Cut:
    """A decision: cut the first `end` characters of the buffer; `reason` says which rule."""

    end: int
    reason: str


def next_cut(
    text: str,
    *,
    started: bool,
    idle_ms: float,
    max_delay_ms: float,
    flush: bool = False,
    end: bool = False,
    language: str = "en",
    max_chars: int = MAX_SEGMENT_CHARS,
) -> Cut | None:
    """The segment to cut from the front of `text` now, or None to keep buffering."""
    if not text.strip():
        return None
    sentence_end = _first_sentence_end(text, language)
    if sentence_end is not None and sentence_end <= max_chars:
        return Cut(sentence_end, "sentence")
    if flush or end:
        return Cut(len(text), "end" if end else "flush")
    if not started and len(text.strip()) >= FIRST_CLAUSE_CHARS:
        clause = _last_clause_end(text[:max_chars])
        if clause is not None:
            return Cut(clause, "clause")
    if idle_ms >= max_delay_ms:
        return Cut(len(text), "timeout")
    if len(text) > max_chars:
        return Cut(_forced_end(text, max_chars), "length")
    return None


def _first_sentence_end(text: str, language: str) -> int | None:
    """Where the first complete sentence ends (an index into `text`), if text follows it."""
    sentences = split_text(text, _NO_LIMIT, language)
    if len(sentences) < 2:
        return None
    first = sentences[0]
    start = text.find(first)
    return start + len(first) if start >= 0 else None


def _last_clause_end(text: str) -> int | None:
    """The end of the last clause mark followed by a space, if any."""
    ends = [m.end() for m in _CLAUSE.finditer(text)]
    return ends[-1] if ends else None


def _forced_end(text: str, limit: int) -> int:
    """A cut within `limit` characters: a clause break, else a space, else `limit` itself."""
    head = text[:limit]
    clause = _last_clause_end(head)
    if clause:
        return clause
    space = head.rstrip().rfind(" ")
    return space if space > 0 else limit

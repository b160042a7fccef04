"""What a caller heard of a prompt: its text up to the end of the last word played in full."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

Word = Mapping[str, Any]  # the server's {"word", "start_ms", "end_ms", "text_start", "text_end"}


def heard_end(words: Sequence[Word], position_ms: float) -> int:
    """The offset in the spoken text where the last word that ended by `position_ms` ends;
    0 when no word had ended."""
    ends = [int(w["text_end"]) for w in words if float(w["end_ms"]) <= position_ms]
    return max(ends, default=0)


def heard_text(
    text: str,
    sentences: Sequence[str],
    played: int,
    words: Sequence[Word] = (),
    position_ms: float = 0.0,
) -> str:
    """The prefix of `text` a caller heard when `sentences[:played]` played in full and
    `sentences[played]` (whose `words` index it) stopped at `position_ms`.

    The sentences are `text` re-spaced (split_sentences collapses whitespace), so a position
    in them is carried back to `text` by counting its non-space characters.
    """
    if played >= len(sentences):
        return text
    count = sum(_visible(s) for s in sentences[:played])
    count += _visible(sentences[played][: heard_end(words, position_ms)])
    return _prefix_with_visible(text, count)


def _visible(text: str) -> int:
    """How many non-space characters `text` holds."""
    return sum(not c.isspace() for c in text)


def _prefix_with_visible(text: str, count: int) -> str:
    """`text` up to and including its `count`-th non-space character ("" for 0)."""
    if count <= 0:
        return ""
    seen = 0
    for index, char in enumerate(text):
        if not char.isspace():
            seen += 1
            if seen == count:
                return text[: index + 1]
    return text

"""The buffering rules as a table: buffered text and facts in, the cut (or none) out."""

from __future__ import annotations

import pytest

from voxline.realtime.buffering import FIRST_CLAUSE_CHARS, next_cut

LONG_CLAUSE = "Well, I think the weather today looks fine, and"  # 47 chars, clause at 43
LATER = dict(started=True, idle_ms=0, max_delay_ms=400)
FIRST = dict(started=False, idle_ms=0, max_delay_ms=400)

CASES = [
    # (text, facts, expected cut text or None, reason)
    ("", dict(FIRST, end=True), None, None),
    ("   ", dict(FIRST, flush=True), None, None),
    ("Hello", FIRST, None, None),
    ("Hello there.", FIRST, None, None),  # nothing follows yet: maybe "Mr." or "3."
    ("Hello there. How", FIRST, "Hello there.", "sentence"),
    ("Hello there. How", LATER, "Hello there.", "sentence"),
    ("Is it? Yes", LATER, "Is it?", "sentence"),
    ("Hello Mr. Smith", LATER, None, None),  # an abbreviation is no sentence end
    ("It costs 3.5 dollars. And", LATER, "It costs 3.5 dollars.", "sentence"),
    ("One. Two. Three", LATER, "One.", "sentence"),  # one sentence per segment
    ("Hello there", dict(LATER, flush=True), "Hello there", "flush"),
    ("Hello there", dict(LATER, end=True), "Hello there", "end"),
    ("Hello. World", dict(LATER, end=True), "Hello.", "sentence"),  # one sentence each
    ("Hello. World", dict(LATER, flush=True), "Hello.", "sentence"),
    ("Hello there", dict(LATER, idle_ms=399), None, None),
    ("Hello there", dict(LATER, idle_ms=400), "Hello there", "timeout"),
    ("Hello there", dict(FIRST, idle_ms=250, max_delay_ms=200), "Hello there", "timeout"),
    # First segment: a clause break once ~40 characters are buffered.
    (LONG_CLAUSE, FIRST, "Well, I think the weather today looks fine,", "clause"),
    (LONG_CLAUSE, LATER, None, None),  # later segments prefer whole sentences
    ("Well, I think so", FIRST, None, None),  # too little buffered yet
    ("Well I think the weather today looks fine and sunny", FIRST, None, None),  # no clause
    ("So - I think the weather today looks fine and sunny", FIRST, "So -", "clause"),
    (
        "Yes: the weather today looks fine and sunny, really",
        FIRST,
        "Yes: the weather today looks fine and sunny,",
        "clause",
    ),
    # A clause mark must be followed by a space: "1,000" is no clause break.
    ("The weather costs 1,000 dollars today and 2,000 tomorrow", FIRST, None, None),
]


@pytest.mark.parametrize(("text", "facts", "expected", "reason"), CASES)
def test_rules(text, facts, expected, reason):
    cut = next_cut(text, **facts)
    if expected is None:
        assert cut is None
        return
    assert cut is not None
    assert text[: cut.end].strip() == expected
    assert cut.reason == reason


def test_first_clause_threshold_is_measured_on_buffered_text():
    text = "Well, " + "x" * (FIRST_CLAUSE_CHARS - 8) + " y"
    assert len(text.strip()) == FIRST_CLAUSE_CHARS
    assert next_cut(text[:-1], **FIRST) is None
    assert next_cut(text, **FIRST).end == len("Well,")


def test_overlong_text_without_sentence_end_is_cut_within_the_limit():
    text = " ".join(["word"] * 80)  # 399 characters, no punctuation
    cut = next_cut(text, **LATER, max_chars=100)
    assert cut.reason == "length"
    assert 0 < cut.end <= 100 and text[cut.end] == " "


def test_cutting_repeatedly_consumes_a_token_stream_in_sentence_order():
    """Feed tokens one by one as an LLM would; the segments re-join to the text."""
    text = (
        "Hi there. I can help with that, of course. The store opens at nine, "
        "and it closes at five. Anything else?"
    )
    tokens = [text[i : i + 3] for i in range(0, len(text), 3)]
    buffer, segments, started = "", [], False
    for token in tokens:
        buffer += token
        while cut := next_cut(buffer, started=started, idle_ms=0, max_delay_ms=400):
            segments.append(buffer[: cut.end].strip())
            buffer, started = buffer[cut.end :], True
    cut = next_cut(buffer, started=started, idle_ms=0, max_delay_ms=400, end=True)
    segments.append(buffer[: cut.end].strip())
    assert segments == [
        "Hi there.",
        "I can help with that, of course.",
        "The store opens at nine, and it closes at five.",
        "Anything else?",
    ]

"""Span invariants: every spoken word maps back to non-empty source text inside the input."""

from __future__ import annotations

import re

import pytest
from test_english import CASES

from voxline.synthesis.frontend import Spoken

SSML_DOCUMENTS = [
    '<speak>Pay <say-as interpret-as="currency">$12.50</say-as> by <say-as interpret-as="date" '
    'format="dmy">03/12/2026</say-as>.<break time="300ms"/>Code <say-as interpret-as='
    '"characters">K7</say-as>, call 555-0142.</speak>',
    "<speak><p><s>Tom &amp; Jerry at 3:30pm</s></p><p>€30 for <sub alias=\"two\">2</sub></p>"
    "</speak>",
    '<speak><prosody rate="80%">Slow 5 km</prosody> then <phoneme ph="ˈækmi">Acme</phoneme>'
    "</speak>",
]


def check_spans(spoken: Spoken, source: str) -> None:
    for piece in spoken.pieces:
        if piece.kind == "break":
            assert piece.spans == ()
            continue
        words = [m.span() for m in re.finditer(r"\S+", piece.text)]
        assert [(s.start, s.end) for s in piece.spans] == words  # one span per spoken word
        for span in piece.spans:
            assert 0 <= span.src_start < span.src_end <= len(source)
            assert source[span.src_start:span.src_end].strip()
        starts = [s.src_start for s in piece.spans]
        assert starts == sorted(starts)  # speaking order follows the source


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_plain_text_spans(front_end, text):
    check_spans(front_end.process(text, language="en"), text)


@pytest.mark.parametrize("document", SSML_DOCUMENTS)
def test_ssml_spans(front_end, document):
    check_spans(front_end.process(document, language="en", text_type="ssml", phonemes=True),
                document)


def test_untouched_words_map_to_themselves(front_end):
    text = "Please hold, your call is important to us. We paid $5 on Baker St. today!"
    spoken = front_end.process(text, language="en")
    piece = spoken.pieces[0]
    untouched = {"Please", "hold,", "your", "call", "is", "important", "to", "us.", "We",
                 "paid", "on", "Baker", "today!"}
    seen = set()
    for span in piece.spans:
        word = piece.text[span.start:span.end]
        if word in untouched:
            assert text[span.src_start:span.src_end] == word
            seen.add(word)
    assert seen == untouched
    assert {text[s.src_start:s.src_end] for s in piece.spans} >= {"$5", "St."}


def test_text_with_nothing_to_normalise_maps_word_for_word(front_end):
    text = "  Thank you   for calling,\nhow can I help?  "
    piece = front_end.process(text, language="en").pieces[0]
    assert [text[s.src_start:s.src_end] for s in piece.spans] == text.split()
    assert piece.text == " ".join(text.split())

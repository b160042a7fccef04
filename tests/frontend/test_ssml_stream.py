"""Cutting streamed SSML (session deltas) only between whole elements."""

from __future__ import annotations

import re

import pytest

from voxline.synthesis.errors import NoSpeakableText
from voxline.synthesis.frontend.ssml import split_ssml_stream, ssml_safe_cut


@pytest.mark.parametrize(("buffer", "cut_after"), [
    ("<speak>Hello", None),
    ("<speak>Hello <break/>", "<break/>"),
    ('<speak>Hello <break time="500ms"/> wor', '<break time="500ms"/>'),
    ("<speak><s>One</s><s>Tw", "<s>One</s>"),
    ('<speak><prosody rate="slow">a <break/> b', None),  # a break inside prosody: not yet
    ('<speak><prosody rate="slow">a <break/> b</prosody> c', None),  # no break or sentence
    ('<speak><sub alias="a > b">x</sub> and <say-as interpret', None),
    ("<speak><s>One</s><!-- </s> --> two", "<s>One</s>"),
    ("<speak><p><s>One</s>", None),  # still inside <p>
    ("<speak><p><s>One</s></p><p>", "</p>"),
    ("<speak>All done.</speak>", "</speak>"),
])
def test_safe_cut(buffer, cut_after):
    expected = None if cut_after is None else buffer.rindex(cut_after) + len(cut_after)
    assert ssml_safe_cut(buffer) == expected


@pytest.mark.parametrize(("buffer", "cut_after"), [
    ('<speak><prosody rate="slow">a <break/> b</prosody> c', "</prosody>"),
    ('<speak><sub alias="a > b">x</sub> and <say-as interpret', "</sub>"),
    ("<speak><s>One</s><s>Two</s> thr", "<s>Two</s>"),
    ("<speak><p><s>One</s>", None),  # still inside <p>
])
def test_a_flush_cuts_between_any_whole_elements(buffer, cut_after):
    expected = None if cut_after is None else buffer.rindex(cut_after) + len(cut_after)
    assert ssml_safe_cut(buffer, anywhere=True) == expected


def test_the_first_break_or_sentence_is_cut_first():
    buffer = "<speak>One.<break/>Two.<break/><s>Three.</s> Four"
    assert ssml_safe_cut(buffer) == buffer.index("<break/>") + len("<break/>")


def test_split_gives_a_complete_document_and_reopens_speak(front_end):
    buffer = '<speak xml:lang="en-US">Pay $5 <break time="300ms"/> then <s>more'
    document, kept = split_ssml_stream(buffer)
    assert document == '<speak xml:lang="en-US">Pay $5 <break time="300ms"/></speak>'
    assert kept == '<speak xml:lang="en-US"> then <s>more'
    spoken = front_end.process(document, language="en", text_type="ssml")
    assert spoken.text == "Pay five dollars" and spoken.pieces[-1].break_ms == 300
    assert split_ssml_stream(kept) is None
    last, rest = split_ssml_stream(kept + " words</s></speak>")
    assert front_end.process(last, language="en", text_type="ssml").text == "then more words."
    assert re.sub(r"<[^>]+>", "", rest).strip() == ""  # an empty document: nothing to say


def test_streamed_deltas_say_the_same_as_the_whole_document(front_end):
    whole = ('<speak>Your code is <say-as interpret-as="characters">K7</say-as>.'
             '<break time="200ms"/>Call <say-as interpret-as="telephone">555-0142</say-as> '
             '<prosody rate="fast">soon</prosody>.</speak>')
    said, buffer = [], ""
    for i in range(0, len(whole), 7):  # deltas of 7 characters, cutting through tags
        buffer += whole[i:i + 7]
        while (split := split_ssml_stream(buffer)) is not None:
            document, buffer = split
            try:
                said.append(front_end.process(document, language="en", text_type="ssml").text)
            except NoSpeakableText:  # a segment of punctuation only: a session skips it
                said.append("")
    assert buffer == ""
    whole_said = front_end.process(whole, language="en", text_type="ssml").text
    assert re.findall(r"\w+", " ".join(said)) == re.findall(r"\w+", whole_said)

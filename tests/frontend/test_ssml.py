"""SSML: every supported element, spans into the document as sent, exact breaks, clear errors."""

from __future__ import annotations

import pytest

from voxline.synthesis.errors import InvalidRequest
from voxline.synthesis.frontend import Spoken


def ssml(front_end, document: str, phonemes: bool = True) -> Spoken:
    return front_end.process(document, language="en", text_type="ssml", phonemes=phonemes)


def sources(spoken: Spoken, document: str) -> list[tuple[str, str]]:
    """(spoken word, the document characters it came from) for every word."""
    return [(piece.text[s.start:s.end], document[s.src_start:s.src_end])
            for piece in spoken.pieces for s in piece.spans]


def error(front_end, document: str, phonemes: bool = True) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        ssml(front_end, document, phonemes)
    return caught.value


def test_plain_speak_maps_every_word_to_itself(front_end):
    doc = "<speak>Hello there, friend.</speak>"
    spoken = ssml(front_end, doc)
    assert spoken.text == "Hello there, friend."
    assert sources(spoken, doc) == [("Hello", "Hello"), ("there,", "there,"),
                                    ("friend.", "friend.")]


def test_normalised_words_map_to_the_whole_written_form(front_end):
    doc = "<speak>Pay $12 now</speak>"
    assert sources(ssml(front_end, doc), doc) == [
        ("Pay", "Pay"), ("twelve", "$12"), ("dollars", "$12"), ("now", "now")]


def test_p_and_s_end_their_sentences(front_end):
    spoken = ssml(front_end, "<speak><p><s>First one</s><s>Second one!</s></p><p>Third</p></speak>")
    assert spoken.text == "First one. Second one! Third."


@pytest.mark.parametrize(("attributes", "ms"), [
    ('time="500ms"', 500), ('time="1.5s"', 1500), ('time="20ms"', 20), ('time="0.25s"', 250),
    ('strength="x-weak"', 100), ('strength="weak"', 250), ('strength="medium"', 500),
    ('strength="strong"', 750), ('strength="x-strong"', 1000), ("", 500),
])
def test_break_lengths_are_exact(front_end, attributes, ms):
    spoken = ssml(front_end, f"<speak>Before <break {attributes}/> after</speak>")
    kinds = [p.kind for p in spoken.pieces]
    assert kinds == ["text", "break", "text"]
    assert spoken.pieces[1].break_ms == ms
    assert spoken.text == "Before after"
    assert f"<break {ms:g}ms>" in spoken.key


def test_strength_none_is_no_break(front_end):
    spoken = ssml(front_end, '<speak>One <break strength="none"/> two</speak>')
    assert [p.kind for p in spoken.pieces] == ["text", "text"]


@pytest.mark.parametrize(("element", "spoken"), [
    ('<say-as interpret-as="characters">AB1</say-as>', "A, B one"),
    ('<say-as interpret-as="spell-out">hello</say-as>', "H E L L O"),
    ('<say-as interpret-as="digits">2048</say-as>', "two zero four eight"),
    ('<say-as interpret-as="telephone">555-0142</say-as>', "five five five, zero one four two"),
    ('<say-as interpret-as="cardinal">2048</say-as>', "two thousand and forty eight"),
    ('<say-as interpret-as="cardinal">1,234</say-as>', "one thousand two hundred and thirty four"),
    ('<say-as interpret-as="ordinal">3</say-as>', "third"),
    ('<say-as interpret-as="ordinal">22</say-as>', "twenty second"),
    ('<say-as interpret-as="date" format="mdy">12/03/2026</say-as>',
     "december third, twenty twenty six"),
    ('<say-as interpret-as="date" format="dmy">03/12/2026</say-as>',
     "december third, twenty twenty six"),
    ('<say-as interpret-as="date" format="ymd">2026-12-03</say-as>',
     "december third, twenty twenty six"),
    ('<say-as interpret-as="date" format="md">12/03</say-as>', "december third"),
    ('<say-as interpret-as="date" format="dm">3.12</say-as>', "december third"),
    ('<say-as interpret-as="date" format="ym">2026-12</say-as>', "december twenty twenty six"),
    ('<say-as interpret-as="time">3:30pm</say-as>', "three thirty PM"),
    ('<say-as interpret-as="currency">$12.50</say-as>', "twelve dollars fifty cents"),
    ('<sub alias="World Wide Web">WWW</sub>', "World Wide Web"),
])
def test_say_as_and_sub(front_end, element, spoken):
    assert ssml(front_end, f"<speak>{element}</speak>").text == spoken


def test_spelled_characters_each_map_to_their_own_character(front_end):
    doc = '<speak>Code <say-as interpret-as="characters">K7</say-as></speak>'
    assert sources(ssml(front_end, doc), doc) == [("Code", "Code"), ("K", "K"), ("seven", "7")]


def test_say_as_and_sub_words_map_to_the_element_content(front_end):
    doc = ('<speak><say-as interpret-as="telephone">555-0142</say-as> or '
           '<sub alias="World Wide Web">WWW</sub></speak>')
    pairs = sources(ssml(front_end, doc), doc)
    assert pairs[0] == ("five", "555-0142") and pairs[-1] == ("Web", "WWW")
    assert ("or", "or") in pairs


@pytest.mark.parametrize(("rate", "speed"), [
    ("x-slow", 0.5), ("slow", 0.75), ("medium", 1.0), ("fast", 1.25), ("x-fast", 1.5),
    ("80%", 0.8), ("150%", 1.5), ("1.2", 1.2),
])
def test_prosody_rate_becomes_a_speed(front_end, rate, speed):
    spoken = ssml(front_end, f'<speak>Normal <prosody rate="{rate}">changed</prosody> end</speak>')
    assert [(p.text, p.rate) for p in spoken.pieces] == [
        ("Normal", None), ("changed", speed), ("end", None)]


def test_nested_prosody_uses_the_innermost_rate(front_end):
    spoken = ssml(front_end, '<speak><prosody rate="slow">a <prosody rate="fast">b</prosody> '
                             "c</prosody></speak>")
    assert [(p.text, p.rate) for p in spoken.pieces] == [("a", 0.75), ("b", 1.25), ("c", 0.75)]


def test_phoneme_is_a_phonemes_piece(front_end):
    doc = '<speak>Say <phoneme alphabet="ipa" ph="təˈmeɪtoʊ">tomato</phoneme> now</speak>'
    spoken = ssml(front_end, doc)
    assert [(p.kind, p.text) for p in spoken.pieces] == [
        ("text", "Say"), ("phonemes", "təˈmeɪtoʊ"), ("text", "now")]
    assert sources(spoken, doc)[1] == ("təˈmeɪtoʊ", "tomato")
    assert spoken.text == "Say [[təˈmeɪtoʊ]] now"


def test_phoneme_needs_an_engine_that_takes_phonemes(front_end):
    caught = error(front_end, '<speak><phoneme ph="a">x</phoneme></speak>', phonemes=False)
    assert caught.code == "unsupported_ssml" and "<phoneme>" in caught.message


def test_entities_map_to_their_whole_reference(front_end):
    doc = "<speak>Tom &amp; Jerry</speak>"
    assert sources(ssml(front_end, doc), doc) == [
        ("Tom", "Tom"), ("and", "&amp;"), ("Jerry", "Jerry")]


def test_offsets_count_characters_not_bytes(front_end):
    doc = "<speak>Café crème costs €30 today</speak>"
    pairs = sources(ssml(front_end, doc), doc)
    assert ("crème", "crème") in pairs and ("euros", "€30") in pairs and ("today", "today") in pairs


def test_namespaced_speak_is_accepted(front_end):
    doc = ('<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
           "Hi <break time=\"200ms\"/> there</speak>")
    assert ssml(front_end, doc).pieces[1].break_ms == 200


def test_describe_is_the_preview_body(front_end):
    doc = "<speak>Pay $5 <break time=\"300ms\"/> now</speak>"
    body = ssml(front_end, doc).describe()
    assert body["spoken"] == "Pay five dollars now"
    for span in body["spans"]:
        a, b = span["spoken"]
        assert body["spoken"][a:b] and doc[slice(*span["source"])]
    assert body["spans"][-1] == {"spoken": [17, 20], "source": [doc.index("now"), len(doc) - 8]}
    assert [p["kind"] for p in body["pieces"]] == ["text", "break", "text"]


@pytest.mark.parametrize(("document", "line", "column"), [
    ("<speak>\n  <s>Hello</p>\n</speak>", 2, 13),
    ("<speak>Hello", 1, 13),
    ("<speak>a &unknown; b</speak>", 1, 10),
    ("not xml at all", 1, 1),
])
def test_malformed_ssml_names_line_and_column(front_end, document, line, column):
    caught = error(front_end, document)
    assert caught.code == "invalid_ssml"
    assert f"line {line}, column {column}" in caught.message


@pytest.mark.parametrize(("document", "named"), [
    ('<speak><audio src="x.wav"/></speak>', "<audio>"),
    ("<speak><emphasis>hi</emphasis></speak>", "<emphasis>"),
    ('<speak><say-as interpret-as="unit">5kg</say-as></speak>', "interpret-as='unit'"),
    ("<voice>hi</voice>", "<voice>"),
    ('<speak xmlns:x="urn:x"><x:y>hi</x:y></speak>', "<y>"),
])
def test_unsupported_elements_are_named(front_end, document, named):
    caught = error(front_end, document)
    assert caught.code == "unsupported_ssml" and named in caught.message


@pytest.mark.parametrize("document", [
    '<speak>a <break time="fast"/></speak>',
    '<speak>a <break time="11s"/></speak>',
    '<speak>a <break strength="loud"/></speak>',
    '<speak><prosody rate="warp">a</prosody></speak>',
    '<speak><prosody rate="1000%">a</prosody></speak>',
    "<speak><sub>WWW</sub></speak>",
    '<speak><say-as interpret-as="date" format="mdy">12/2026</say-as></speak>',
    '<speak><say-as interpret-as="characters"><s>x</s></say-as></speak>',
])
def test_bad_attributes_are_invalid_ssml_with_a_position(front_end, document):
    caught = error(front_end, document)
    assert caught.code == "invalid_ssml" and caught.param == "text"


def test_punctuation_alone_has_nothing_to_speak_but_a_break_is_silence(front_end):
    from voxline.synthesis.errors import NoSpeakableText

    with pytest.raises(NoSpeakableText):
        ssml(front_end, "<speak>...!? <s>--</s></speak>")
    spoken = ssml(front_end, '<speak>. <break time="1s"/> !</speak>')
    assert [(p.kind, p.break_ms) for p in spoken.pieces] == [("break", 1000)]


def test_line_breaks_and_declarations_keep_offsets_right(front_end):
    doc = ('<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<speak>\r\nCafé\r\n'
           "<s>Pay €30</s>\r\n</speak>")
    pairs = sources(ssml(front_end, doc), doc)
    assert ("Café", "Café") in pairs and ("euros.", "€30") in pairs

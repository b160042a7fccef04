"""Pronunciation lexicons (W3C PLS 1.0): store, validation, persistence, and how they apply."""

from __future__ import annotations

import pytest

from voxline.synthesis.errors import InvalidRequest, TooLarge, UnknownLexicon
from voxline.synthesis.frontend import LexiconStore


def pls(*lexemes: str, lang: str = "en-US", alphabet: str = "ipa") -> bytes:
    body = "".join(f"<lexeme>{x}</lexeme>" for x in lexemes)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<lexicon version="1.0" xml:lang="{lang}" '
            f'alphabet="{alphabet}" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">'
            f"{body}</lexicon>").encode()


BRANDS = pls("<grapheme>Voxline</grapheme><alias>vox line</alias>",
             "<grapheme>W3C</grapheme><alias>World Wide Web Consortium</alias>",
             "<grapheme>nginx</grapheme><alias>engine x</alias>",
             "<grapheme>New York</grapheme><alias>the big apple</alias>",
             "<grapheme>tomato</grapheme><phoneme>təˈmɑːtoʊ</phoneme>",
             "<grapheme>Acme</grapheme><alias>ack me</alias><phoneme>ˈækmi</phoneme>")


@pytest.fixture
def store(tmp_path):
    store = LexiconStore(tmp_path / "lexicons")
    store.put("brands", BRANDS)
    return store


def say(make_front_end, store, text, **options):
    return make_front_end("en", lexicons=store).process(text, language="en", **options).text


def test_put_get_names_delete(store, tmp_path):
    assert store.names() == ["brands"]
    assert store.get("brands").document == BRANDS
    assert (tmp_path / "lexicons" / "brands.pls").read_bytes() == BRANDS
    store.delete("brands")
    assert store.names() == []
    assert not (tmp_path / "lexicons" / "brands.pls").exists()
    with pytest.raises(UnknownLexicon):
        store.get("brands")
    with pytest.raises(UnknownLexicon):
        store.delete("brands")


def test_a_new_store_loads_what_was_persisted_and_reports_bad_files(store, tmp_path):
    (tmp_path / "lexicons" / "broken.pls").write_bytes(b"<lexicon>")
    reloaded = LexiconStore(tmp_path / "lexicons")
    failures = reloaded.load()
    assert reloaded.names() == ["brands"]
    assert list(failures) == ["broken.pls"] and "malformed" in failures["broken.pls"]


def test_aliases_apply_to_whole_words_only(make_front_end, store):
    assert say(make_front_end, store, "Voxline runs nginx.") == "vox line runs engine x."
    assert say(make_front_end, store, "Voxlines and nginxes.") == "Voxlines and nginxes."


def test_lowercase_graphemes_match_any_case_capitalised_ones_exactly(make_front_end, store):
    assert say(make_front_end, store, "NGINX and Nginx") == "engine x and engine x"
    assert say(make_front_end, store, "voxline and VOXLINE") == "voxline and VOXLINE"


def test_multi_word_graphemes(make_front_end, store):
    assert say(make_front_end, store, "I love New  York.") == "I love the big apple."


def test_lexicon_words_map_to_the_grapheme(make_front_end, store):
    text = "The W3C met."
    spoken = make_front_end("en", lexicons=store).process(text, language="en")
    piece = spoken.pieces[0]
    assert {text[s.src_start:s.src_end] for s in piece.spans[1:5]} == {"W3C"}


def test_lexicons_win_over_normalisation(make_front_end, store):
    assert say(make_front_end, store, "Ask the W3C about $5.") == (
        "Ask the World Wide Web Consortium about five dollars.")


def test_phonemes_where_the_engine_takes_them(make_front_end, store):
    spoken = make_front_end("en", lexicons=store).process("A tomato from Acme", language="en",
                                                          phonemes=True)
    assert [(p.kind, p.text) for p in spoken.pieces] == [
        ("text", "A"), ("phonemes", "təˈmɑːtoʊ"), ("text", "from"), ("phonemes", "ˈækmi")]


def test_without_phonemes_the_alias_or_the_word_is_said(make_front_end, store):
    assert say(make_front_end, store, "A tomato from Acme") == "A tomato from ack me"


def test_a_lexicon_applies_to_its_language_only(make_front_end, store):
    store.put("spanish", pls("<grapheme>hola</grapheme><alias>buenas</alias>", lang="es-ES"))
    front_end = make_front_end("en", lexicons=store)
    assert front_end.process("hola Voxline", language="en").text == "hola vox line"
    assert front_end.process("hola Voxline", language="es").text == "buenas Voxline"


def test_lexicon_names_choose_which_apply(make_front_end, store):
    store.put("other", pls("<grapheme>Voxline</grapheme><alias>the server</alias>"))
    front_end = make_front_end("en", lexicons=store)
    assert front_end.process("Voxline", language="en").text == "vox line"  # by name order
    assert front_end.process("Voxline", language="en", lexicon_names=["other"]).text == (
        "the server")
    assert front_end.process("Voxline", language="en", lexicon_names=[]).text == "Voxline"
    with pytest.raises(UnknownLexicon):
        front_end.process("Voxline", language="en", lexicon_names=["nope"])


def test_a_put_is_heard_at_once(make_front_end, store):
    front_end = make_front_end("en", lexicons=store)
    before = front_end.process("Voxline", language="en")
    store.put("brands", pls("<grapheme>Voxline</grapheme><alias>vox-line server</alias>"))
    after = front_end.process("Voxline", language="en")
    assert before.key != after.key and after.text == "vox-line server"


@pytest.mark.parametrize(("document", "fragment"), [
    (b"<lexicon", "malformed"),
    (b'<lexicon version="1.0" xml:lang="en" alphabet="ipa"/>', "namespace"),
    (pls("<grapheme>a</grapheme>"), "neither"),
    (pls("<alias>x</alias>"), "grapheme"),
    (pls("<grapheme>a</grapheme><phoneme>x</phoneme>", alphabet="x-sampa"), "alphabet"),
    (pls("<grapheme>a</grapheme><alias> </alias>"), "empty"),
    (BRANDS.replace(b'<lexicon version="1.0" ', b"<lexicon "), "version"),
    (b'<!DOCTYPE l [<!ENTITY x "y">]>' + BRANDS[BRANDS.index(b"<lexicon"):], "DTD"),
])
def test_malformed_lexicons_are_refused_and_nothing_changes(store, document, fragment):
    with pytest.raises(InvalidRequest) as caught:
        store.put("brands", document)
    assert caught.value.code == "invalid_lexicon" and fragment in caught.value.message
    assert store.get("brands").document == BRANDS


def test_names_sizes_and_counts_are_limited(tmp_path):
    store = LexiconStore(tmp_path, max_bytes=2000, max_lexicons=2, max_lexemes=3)
    for bad in ("../x", "a b", "", "x" * 65, "é"):
        with pytest.raises(InvalidRequest) as caught:
            store.put(bad, BRANDS[:10])
        assert caught.value.code == "invalid_lexicon_name"
    with pytest.raises(TooLarge):
        store.put("big", pls(*["<grapheme>a</grapheme><alias>b</alias>"] * 4))
    with pytest.raises(TooLarge):
        store.put("huge", pls("<grapheme>a</grapheme><alias>" + "b" * 3000 + "</alias>"))
    store.put("one", pls("<grapheme>a</grapheme><alias>b</alias>"))
    store.put("two", pls("<grapheme>a</grapheme><alias>b</alias>"))
    with pytest.raises(InvalidRequest) as caught:
        store.put("three", pls("<grapheme>a</grapheme><alias>b</alias>"))
    assert caught.value.code == "too_many_lexicons"
    store.put("two", pls("<grapheme>c</grapheme><alias>d</alias>"))  # replacing is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.pls", "two.pls"]


def test_digest_follows_the_lexicons_of_a_language(store):
    english, spanish = store.digest("en"), store.digest("es")
    store.put("spanish", pls("<grapheme>hola</grapheme><alias>buenas</alias>", lang="es"))
    assert store.digest("en") == english and store.digest("es") != spanish

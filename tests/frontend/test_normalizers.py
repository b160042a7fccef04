"""The grammar registry: status per language, pass-through until ready, the prepare CLI, and
many request threads at once."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import pytest
from conftest import grammar_cache

from voxline.synthesis.errors import NoSpeakableText
from voxline.synthesis.frontend import FrontEnd, LexiconStore, Normalizers
from voxline.synthesis.frontend.grammar import GRAMMAR_LANGUAGES, cache_root, grammar_language


def test_language_codes_map_to_grammars():
    assert [grammar_language(x) for x in ("en", "en-US", "en_GB", "zh-cn", "PT-br")] == [
        "en", "en", "en", "zh", "pt"]


def test_the_cache_is_keyed_by_the_package_version(tmp_path):
    assert cache_root(tmp_path) == tmp_path / f"nemo-{version('nemo-text-processing')}"


def test_status_before_and_after_prepare(tmp_path, grammars):
    normalizers = Normalizers(grammar_cache())
    assert set(normalizers.status().values()) == {"off"}
    assert set(normalizers.status()) == set(GRAMMAR_LANGUAGES)
    normalizers.prepare(["en", "pl"], background=True)
    normalizers.wait(60)
    status = normalizers.status()
    assert status["en"] == "ready"
    assert normalizers.get("en-US") is not None


def test_a_language_without_grammar_is_unavailable_and_passes_through(tmp_path):
    normalizers = Normalizers(tmp_path)
    normalizers.prepare(["pl"], background=False)
    assert normalizers.status()["pl"] == "unavailable: no grammar for pl"
    front_end = FrontEnd(normalizers, LexiconStore())
    # The spelling rules still read phone numbers and codes in Polish.
    assert front_end.process("Zadzwoń 555-0142 o 5", language="pl").text == (
        "Zadzwoń pięć pięć pięć, zero jeden cztery dwa o 5")


def test_a_language_not_ready_passes_through_unnormalised(tmp_path):
    normalizers = Normalizers(tmp_path / "empty")  # nothing compiled here, nothing prepared
    front_end = FrontEnd(normalizers, LexiconStore())
    assert front_end.process("It costs $5.", language="en").text == "It costs $5."
    assert normalizers.status()["en"] == "off"


def test_prepare_cli_skips_compiled_and_unknown_languages(grammars):
    grammars("en")
    done = subprocess.run(
        [sys.executable, "-m", "voxline.synthesis.frontend.prepare", "--languages", "en,pl",
         "--cache-dir", str(grammar_cache())], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "en: already compiled" in done.stdout
    assert "pl: no grammar" in done.stdout


def test_many_threads_get_the_same_answers_as_one(front_end):
    texts = ["I paid $1,249.50 on 12/03/2026.", "Call 555-0142 at 3:30pm.",
             "It weighs 2.5kg and costs €30.", "Hello there, how are you?",
             "Meet at 221B Baker St., apt. 4 at 10 am.", "About 45% of 1,000 people."] * 8
    expected = [front_end.process(t, language="en").text for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = list(pool.map(lambda t: front_end.process(t, language="en").text, texts))
            assert got == expected


def test_a_grammar_that_fails_to_compile_is_unavailable_and_leaves_nothing(tmp_path):
    """Russian has no deterministic grammar in NeMo 1.2.0: the child compile fails fast."""
    normalizers = Normalizers(tmp_path)
    normalizers.prepare(["ru"], background=True)
    normalizers.wait(120)
    assert normalizers.status()["ru"].startswith("unavailable: grammar compile failed")
    assert normalizers.get("ru") is None
    assert list(cache_root(tmp_path).iterdir()) == []  # no half-written grammar folder


def test_nemo_keeps_quiet(front_end, caplog):
    with caplog.at_level("DEBUG"):
        front_end.process("I paid $5 on 12/03/2026.", language="en")
    assert not [r for r in caplog.records if r.name == "NeMo-text-processing"]


def test_unknown_text_type_is_invalid(front_end):
    from voxline.synthesis.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        front_end.process("hi", language="en", text_type="markdown")
    assert caught.value.code == "invalid_text_type"


@pytest.mark.slow
def test_a_compile_while_serving_can_wait_for_the_next_start(tmp_path):
    """The real compile path end to end, on the quickest grammar (Japanese, ~6 s here)."""
    serving = Normalizers(tmp_path)
    serving.prepare(["ja"], background=False, load_when_compiled=False)
    assert serving.status()["ja"] == "compiled: ready at restart"
    assert serving.get("ja") is None
    assert [p.name for p in cache_root(tmp_path).iterdir()] == ["ja"]
    restarted = Normalizers(tmp_path)
    restarted.prepare(["ja"], background=False)
    assert restarted.status()["ja"] == "ready"


@pytest.mark.parametrize("text", ["1." * 2500, "1-" * 2500, "1" * 5000, "&" * 4999 + "a",
                                  "a1" * 2500, "Baker St. " * 500])
def test_pathological_texts_stay_cheap(front_end, text):
    """Whole 5,000-character texts the grammar once spent up to 71 s on (and overflowed the
    stack): over-long words are left as written, windows are bounded."""
    import time

    started = time.perf_counter()
    try:
        front_end.process(text, language="en")
    except NoSpeakableText:
        pass
    assert time.perf_counter() - started < 2.0


def test_english_windows_leave_out_plain_words_no_class_reads_with_a_number(grammars):
    english = grammars("en")
    for word in ("and", "takes", "business,", "tonight."):
        assert not english.context_needed(word), word
    for word in ("am", "pm,", "kg.", "km/h", "million", "Dec.", "December", "EST", "GB"):
        assert english.context_needed(word), word

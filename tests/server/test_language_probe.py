"""Language front-end probing as a pure decision, and the 400 a client gets for a broken one."""

from __future__ import annotations

import pytest

from tests.fakes import FakeEngine
from voxline.engines.languages import SAMPLES, probe_languages

XTTS_LANGUAGES = "en es fr de it pt pl tr ru nl cs ar zh-cn hu ko ja hi".split()


def front_end_failing(failures: dict[str, Exception]):
    """A front end that raises the given exception for some languages and records calls."""
    calls: list[tuple[str, str]] = []

    def run(text: str, language: str) -> list[int]:
        calls.append((text, language))
        if language in failures:
            raise failures[language]
        return [1, 2, 3]

    run.calls = calls
    return run


@pytest.mark.parametrize(
    ("failures", "usable", "reasons"),
    [
        ({}, XTTS_LANGUAGES, {}),
        (
            {"ja": ModuleNotFoundError("No module named 'cutlet'", name="cutlet")},
            [x for x in XTTS_LANGUAGES if x != "ja"],
            {"ja": "its text front end failed: No module named 'cutlet' (install coqui-tts[ja])"},
        ),
        (
            {
                "zh-cn": ImportError("Chinese requires: pypinyin"),
                "ko": ImportError("No module named 'ko_speech_tools'"),
            },
            [x for x in XTTS_LANGUAGES if x not in ("zh-cn", "ko")],
            {
                "zh-cn": "its text front end failed: Chinese requires: pypinyin "
                "(install coqui-tts[zh])",
                "ko": "its text front end failed: No module named 'ko_speech_tools' "
                "(install coqui-tts[ko])",
            },
        ),
        # Not an import problem: no package hint.
        (
            {"hi": NotImplementedError("Language 'hi' is not supported.")},
            [x for x in XTTS_LANGUAGES if x != "hi"],
            {"hi": "its text front end failed: Language 'hi' is not supported."},
        ),
        (
            {x: RuntimeError("broken") for x in XTTS_LANGUAGES},
            [],
            {x: "its text front end failed: broken" for x in XTTS_LANGUAGES},
        ),
        # An exception without a message still says what it was.
        (
            {"hu": NotImplementedError()},
            [x for x in XTTS_LANGUAGES if x != "hu"],
            {"hu": "its text front end failed: NotImplementedError"},
        ),
    ],
)
def test_probe_sorts_languages_by_front_end_outcome(failures, usable, reasons, caplog):
    front_end = front_end_failing(failures)
    support = probe_languages(XTTS_LANGUAGES, front_end)
    assert support.usable == tuple(usable)  # the engine's order is kept
    assert support.unavailable == reasons
    # Every language was exercised once, with its own sample text.
    assert front_end.calls == [(SAMPLES[x], x) for x in XTTS_LANGUAGES]
    for language in reasons:
        assert f"language {language} unavailable" in caplog.text


def test_every_xtts_language_has_its_own_sample():
    assert sorted(SAMPLES) == sorted(XTTS_LANGUAGES)
    assert all("3" in text for language, text in SAMPLES.items() if language != "hi")


def test_unavailable_language_is_a_400_saying_why(make_app):
    engine = FakeEngine()
    engine.unavailable_languages = {"ja": "its text front end failed: No module named 'cutlet'"}
    client = make_app(engine).test_client()
    assert client.get("/languages").json["languages"] == ["en", "de"]
    r = client.post("/tts", json={"text": "こんにちは", "language": "ja"})
    assert r.status_code == 400
    assert r.json["error"] == "unsupported_language"
    assert "No module named 'cutlet'" in r.json["message"]
    ok = client.post("/tts", json={"text": "Hello.", "language": "en"})
    assert ok.status_code == 200 and len(ok.data) > 44

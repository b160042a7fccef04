"""Front-end fixtures: grammars compiled once into the CI cache, shared by the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxline.settings import Settings
from voxline.synthesis.frontend import FrontEnd, LexiconStore, Normalizers
from voxline.synthesis.frontend.grammar import Grammar


def grammar_cache() -> Path:
    """Where servers find compiled grammars (VOXLINE_GRAMMAR_DIR; CI keeps them in its cache),
    so only the first run pays ~35 s to minutes per language."""
    return Settings.from_env().grammar_dir


@pytest.fixture(scope="session")
def grammars():
    """Load (compiling first if need be) a language's grammar once per session."""
    loaded: dict[str, Grammar] = {}

    def get(language: str) -> Grammar:
        if language not in loaded:
            normalizers = Normalizers(grammar_cache())
            normalizers.prepare([language], background=False)
            grammar = normalizers.get(language)
            assert grammar is not None, normalizers.status()[language]
            loaded[language] = grammar
        return loaded[language]

    return get


@pytest.fixture(scope="session")
def front_end(grammars) -> FrontEnd:
    """A front end with English ready and no lexicons."""
    normalizers = Normalizers(grammar_cache())
    normalizers.install(grammars("en"))
    return FrontEnd(normalizers, LexiconStore())


@pytest.fixture
def make_front_end(grammars, tmp_path):
    """A front end with the given languages ready and a lexicon store in tmp_path."""

    def build(*languages: str, lexicons: LexiconStore | None = None) -> FrontEnd:
        normalizers = Normalizers(tmp_path / "no-grammars")
        for language in languages:
            normalizers.install(grammars(language))
        return FrontEnd(normalizers, lexicons or LexiconStore(tmp_path / "lexicons"))

    return build

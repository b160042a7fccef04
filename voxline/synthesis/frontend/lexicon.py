"""Pronunciation lexicons (W3C PLS 1.0): validated, stored, persisted, and applied to words.

Matching is whole words only. Case: a grapheme written in lower case matches any case
("voxline" matches "Voxline"); one with capitals matches exactly ("US" never matches "us").
The first alias or phoneme of a lexeme is used. An alias is said by every engine; a phoneme
(alphabet "ipa", espeak's IPA as Piper uses it) only where the engine takes phonemes, else the
lexeme's alias if it has one, else the word is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from voxline.synthesis.errors import InvalidRequest, TooLarge, UnknownLexicon
from voxline.synthesis.frontend.grammar import grammar_language
from voxline.synthesis.frontend.words import Rule, Word, frozen

logger = logging.getLogger(__name__)

PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALPHABETS = ("ipa",)


@dataclass(frozen=True)
class Lexeme:
    graphemes: tuple[str, ...]
    alias: str | None
    phoneme: str | None


@dataclass(frozen=True)
class Lexicon:
    name: str
    language: str  # primary subtag of xml:lang
    lexemes: tuple[Lexeme, ...]
    document: bytes


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest("invalid_lexicon", message, "lexicon")


def parse_lexicon(name: str, document: bytes, max_bytes: int, max_lexemes: int) -> Lexicon:
    """A validated lexicon, or InvalidRequest/TooLarge saying what is wrong with it."""
    if not SAFE_NAME.match(name):
        raise InvalidRequest("invalid_lexicon_name",
                             "lexicon names are 1-64 letters, digits, '_' or '-'", "name")
    if len(document) > max_bytes:
        raise TooLarge("lexicon_too_large", f"a lexicon is at most {max_bytes} bytes", "lexicon")
    try:
        root = fromstring(document, forbid_dtd=True)
    except ParseError as exc:
        line, column = exc.position
        reason = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise _bad(f"malformed lexicon: {reason} (line {line}, column {column + 1})") from exc
    except DefusedXmlException as exc:
        raise _bad("DTDs, entities and external references are not allowed") from exc
    if root.tag != f"{{{PLS_NS}}}lexicon":
        raise _bad(f"the root element must be <lexicon> in the PLS namespace {PLS_NS}")
    if root.get("version") != "1.0":
        raise _bad('the lexicon must have version="1.0"')
    language, alphabet = root.get(XML_LANG), root.get("alphabet")
    if not language or not alphabet:
        raise _bad("the lexicon must have xml:lang and alphabet attributes")
    lexemes = tuple(_lexeme(e, alphabet) for e in root.iter(f"{{{PLS_NS}}}lexeme"))
    if len(lexemes) > max_lexemes:
        raise TooLarge("lexicon_too_large", f"a lexicon holds at most {max_lexemes} lexemes",
                       "lexicon")
    return Lexicon(name, grammar_language(language), lexemes, document)


def _lexeme(element: Element, alphabet: str) -> Lexeme:
    graphemes = tuple(" ".join((g.text or "").split())
                      for g in element.findall(f"{{{PLS_NS}}}grapheme"))
    if not graphemes or not all(graphemes):
        raise _bad("every lexeme needs at least one non-empty <grapheme>")
    alias = element.find(f"{{{PLS_NS}}}alias")
    phoneme = element.find(f"{{{PLS_NS}}}phoneme")
    if alias is None and phoneme is None:
        raise _bad(f"lexeme {graphemes[0]!r} has neither <alias> nor <phoneme>")
    alias_text = " ".join((alias.text or "").split()) if alias is not None else None
    phoneme_text = (phoneme.text or "").strip() if phoneme is not None else None
    if phoneme is not None:
        if phoneme.get("alphabet", alphabet) not in _ALPHABETS:
            raise _bad(f"alphabet {phoneme.get('alphabet', alphabet)!r} is not supported "
                       "(use ipa)")
        if not phoneme_text:
            raise _bad(f"lexeme {graphemes[0]!r} has an empty <phoneme>")
    if alias is not None and not alias_text:
        raise _bad(f"lexeme {graphemes[0]!r} has an empty <alias>")
    return Lexeme(graphemes, alias_text, phoneme_text)


class LexiconStore:
    """Named lexicons, loaded from and persisted to `folder` (`NAME.pls`); thread-safe."""

    def __init__(self, folder: Path | None = None, max_bytes: int = 1 << 20,
                 max_lexicons: int = 100, max_lexemes: int = 10_000) -> None:
        self.folder = Path(folder) if folder else None
        self.max_bytes, self.max_lexicons, self.max_lexemes = max_bytes, max_lexicons, max_lexemes
        self._lexicons: dict[str, Lexicon] = {}
        self._rules: dict[tuple, Rule | None] = {}
        self._lock = threading.Lock()

    def load(self) -> dict[str, str]:
        """Read every `*.pls` of the folder; returns the files that failed, with why (each
        is logged; the others load)."""
        failures: dict[str, str] = {}
        if self.folder is None or not self.folder.is_dir():
            return failures
        for path in sorted(self.folder.glob("*.pls")):
            try:
                lexicon = parse_lexicon(path.stem, path.read_bytes(), self.max_bytes,
                                        self.max_lexemes)
            except (InvalidRequest, TooLarge, OSError) as exc:
                failures[path.name] = getattr(exc, "message", str(exc))
                logger.warning("lexicon %s not loaded: %s", path.name, failures[path.name])
                continue
            with self._lock:
                self._lexicons[lexicon.name] = lexicon
                self._rules.clear()
        return failures

    def put(self, name: str, document: bytes) -> Lexicon:
        """Validate fully, persist, then replace (or add) `name`: nothing is half-applied."""
        lexicon = parse_lexicon(name, document, self.max_bytes, self.max_lexemes)
        with self._lock:
            if name not in self._lexicons and len(self._lexicons) >= self.max_lexicons:
                raise InvalidRequest("too_many_lexicons",
                                     f"at most {self.max_lexicons} lexicons", "name")
            self._write(name, document)
            self._lexicons[name] = lexicon
            self._rules.clear()
        return lexicon

    def get(self, name: str) -> Lexicon:
        with self._lock:
            if name not in self._lexicons:
                raise UnknownLexicon(name)
            return self._lexicons[name]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._lexicons)

    def delete(self, name: str) -> None:
        with self._lock:
            if name not in self._lexicons:
                raise UnknownLexicon(name)
            if self.folder is not None:
                (self.folder / f"{name}.pls").unlink(missing_ok=True)
            del self._lexicons[name]
            self._rules.clear()

    def digest(self, language: str) -> str:
        """Changes whenever a lexicon that applies to `language` does."""
        code = grammar_language(language)
        digest = hashlib.sha256()
        with self._lock:
            for name in sorted(self._lexicons):
                if self._lexicons[name].language == code:
                    digest.update(name.encode() + b"\0" + self._lexicons[name].document)
        return digest.hexdigest()[:16]

    def rule(self, language: str, names: Sequence[str] | None, phonemes: bool) -> Rule | None:
        """The rewrite applying the lexicons of `language` (all, or only `names`, first wins)."""
        code = grammar_language(language)
        key = (code, tuple(names) if names is not None else None, phonemes)
        with self._lock:
            if key not in self._rules:
                chosen = self._chosen(code, names)
                self._rules[key] = _lexicon_rule(chosen, phonemes) if chosen else None
            return self._rules[key]

    def _chosen(self, code: str, names: Sequence[str] | None) -> list[Lexicon]:
        if names is None:
            return [lx for _, lx in sorted(self._lexicons.items()) if lx.language == code]
        missing = [n for n in names if n not in self._lexicons]
        if missing:
            raise UnknownLexicon(missing[0])
        return [self._lexicons[n] for n in names if self._lexicons[n].language == code]

    def _write(self, name: str, document: bytes) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(document)
            os.replace(temp, self.folder / f"{name}.pls")
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _lexicon_rule(lexicons: list[Lexicon], phonemes: bool) -> Rule | None:
    exact: dict[str, Lexeme] = {}
    folded: dict[str, Lexeme] = {}
    for lexicon in lexicons:
        for lexeme in lexicon.lexemes:
            if lexeme.alias is None and not phonemes:
                continue
            for grapheme in lexeme.graphemes:
                table, key = (folded, grapheme) if grapheme == grapheme.lower() else (
                    exact, grapheme)
                table.setdefault(key, lexeme)
    if not exact and not folded:
        return None
    alternatives = sorted([(g, False) for g in exact] + [(g, True) for g in folded],
                          key=lambda a: len(a[0]), reverse=True)
    body = "|".join(f"(?i:{_grapheme_pattern(g)})" if fold else _grapheme_pattern(g)
                    for g, fold in alternatives)
    pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)")

    def render(m: re.Match[str], a: int, b: int) -> list[Word] | None:
        said = " ".join(m.group().split())
        lexeme = exact.get(said) or folded.get(said.lower())
        if lexeme is None:
            return None
        if phonemes and lexeme.phoneme:
            return [Word(lexeme.phoneme, a, b, frozen=True, kind="phonemes")]
        return frozen(lexeme.alias.split(), a, b) if lexeme.alias else None

    return Rule("lexicon", pattern, render)


def _grapheme_pattern(grapheme: str) -> str:
    return r"\s+".join(re.escape(part) for part in grapheme.split())

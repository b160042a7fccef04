"""Normalisation: which languages have grammars ready, and running them over words.

Grammars are never compiled inside a request: `Normalizers.prepare` compiles missing ones in a
child process (`python -m voxline.synthesis.frontend.prepare`), so a compile neither holds this
process's GIL nor leaves half-written files, then loads them. Until a language is ready its
text passes through un-normalised, and `status()` says so.

Loading does hold the GIL (pynini reads the FSTs in C++): measured longest stall of other
threads 0.7 s (en), 0.5 s (es), 5.7 s (de). So a server should start `prepare` when it starts
loading its model (the loads finish long before the model does) and, if it compiled a grammar
while serving, pass `load_when_compiled=False` to pick it up at the next start instead.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from voxline.synthesis.frontend.align import align
from voxline.synthesis.frontend.grammar import (
    GRAMMAR_LANGUAGES,
    Grammar,
    grammar_language,
    is_compiled,
)
from voxline.synthesis.frontend.words import Word

logger = logging.getLogger(__name__)

_SENTENCE_END = (".", "!", "?", "。", "！", "？")
COMPILE_TIMEOUT_S = 1800
_FINAL_DOT_MAKES_ORDINALS = ("de",)
CONTEXT_WORDS = 1
# Bounds on what the grammar reads at once: its cost explodes on long inputs (a 5,000-character
# "1.1.1..." took 71 s and overflowed Python's stack), and it runs under a lock.
MAX_WORD_CHARS = 64
MAX_WINDOW_WORDS = 16
_BARE_NUMBER = re.compile(r"^[\d.,]+\W*$")
_FINAL_NUMBER = re.compile(r"\d\.$")


class Normalizers:
    """Per-language grammars for a server: status for /health, preparation, lookup."""

    def __init__(self, cache_dir: Path, processes: int = 0) -> None:
        self.cache_dir = Path(cache_dir)
        self.processes = processes  # grammar child processes per language; 0: in this one
        self._grammars: dict[str, Grammar] = {}
        self._status: dict[str, str] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def status(self) -> dict[str, str]:
        """Each grammar language, and any other asked for: `ready`, `queued`, `compiling`,
        `loading`, `unavailable: reason`, or `off` (not prepared)."""
        with self._lock:
            return {lang: self._status.get(lang, "off")
                    for lang in (*GRAMMAR_LANGUAGES, *sorted(set(self._status) - set(
                        GRAMMAR_LANGUAGES)))}

    def get(self, language: str) -> Grammar | None:
        """The ready grammar for a request language, or None (text passes through)."""
        return self._grammars.get(grammar_language(language))

    def prepare(self, languages: Iterable[str], background: bool = True,
                load_when_compiled: bool = True) -> None:
        """Load (compiling first where the cache lacks them) the grammars of `languages`, one
        after another; in a daemon thread when `background`. With `load_when_compiled` False a
        grammar compiled now is left for the next start (status `compiled: ready at restart`)."""
        wanted = []
        for language in languages:
            code = grammar_language(language)
            if code not in GRAMMAR_LANGUAGES:
                self._set(code, f"unavailable: no grammar for {code}")
            elif code not in wanted and code not in self._grammars:
                wanted.append(code)
                self._set(code, "loading" if is_compiled(self.cache_dir, code) else "queued")
        if not background:
            self._prepare_all(wanted, load_when_compiled)
            return
        self._worker = threading.Thread(target=self._prepare_all,
                                        args=(wanted, load_when_compiled),
                                        name="grammar-prepare", daemon=True)
        self._worker.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background `prepare` has finished (tests, the prepare CLI)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def install(self, grammar: Grammar) -> None:
        """Use an already loaded grammar (tests share one across front ends)."""
        with self._lock:
            self._grammars[grammar.language] = grammar
            self._status[grammar.language] = "ready"

    def _prepare_all(self, languages: list[str], load_when_compiled: bool) -> None:
        for code in languages:
            try:
                if not is_compiled(self.cache_dir, code):
                    self._set(code, "compiling")
                    _compile_in_child(self.cache_dir, code)
                    if not load_when_compiled:
                        self._set(code, "compiled: ready at restart")
                        continue
                self._set(code, "loading")
                self.install(Grammar.load(self.cache_dir, code, self.processes))
                logger.info("text normalisation ready for %s", code)
            except Exception as exc:  # one language failing leaves the others and the server up
                logger.warning("text normalisation unavailable for %s: %s", code, exc)
                self._set(code, f"unavailable: {exc}")

    def _set(self, code: str, state: str) -> None:
        with self._lock:
            self._status[code] = state


def _compile_in_child(cache_dir: Path, language: str) -> None:
    command = [sys.executable, "-m", "voxline.synthesis.frontend.prepare",
               "--languages", language, "--cache-dir", str(cache_dir), "--nice", "10"]
    root = Path(__file__).resolve().parents[3]  # where `voxline` imports from
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                          cwd=root, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"grammar compile failed: {tail[0]}")


def normalize_words(words: list[Word], grammar: Grammar | None) -> list[Word]:
    """Words with the grammar run, sentence by sentence, over what it could change; frozen
    words (aliases, spelled codes, phonemes) are kept as they are and split what it sees.
    All windows of the text go to the grammar at once, so its processes share them out."""
    if grammar is None:
        return words
    parts = _parts(words, grammar)
    windows = [part for part in parts if isinstance(part, _Window)]
    spoken = iter(grammar.normalize_many([w.text for w in windows]))
    result: list[Word] = []
    for part in parts:
        result += align(part.words, next(spoken) + part.suffix) if isinstance(
            part, _Window) else part
    return result


@dataclass(frozen=True)
class _Window:
    """Words the grammar reads together, as the text it is given (plus what to add after)."""

    words: list[Word]
    text: str
    suffix: str = ""


def _parts(words: list[Word], grammar: Grammar) -> list[list[Word] | _Window]:
    """The words as runs kept as they are and windows for the grammar, in order."""
    parts: list[list[Word] | _Window] = []
    run: list[Word] = []
    for i, word in enumerate(words):
        if word.frozen or word.kind != "word":
            parts += _run_parts(run, grammar)
            parts.append([word])
            run = []
            continue
        run.append(word)
        following = words[i + 1] if i + 1 < len(words) else None
        if _ends_sentence(word, following, grammar):
            parts += _run_parts(run, grammar)
            run = []
    return parts + _run_parts(run, grammar)


def _ends_sentence(word: Word, following: Word | None, grammar: Grammar) -> bool:
    """A full stop before a capitalised word, unless it ends an abbreviation ("Dec. 3")."""
    if not word.text.endswith(_SENTENCE_END) or following is None:
        return following is None
    if grammar.language in _FINAL_DOT_MAKES_ORDINALS and _FINAL_NUMBER.search(word.text):
        return False  # "am 3. Dezember": an ordinal, not the end of a sentence
    if word.text.endswith(".") and grammar.is_abbreviation(word.text):
        return False
    return following.text[:1].isupper()


def _run_parts(run: list[Word], grammar: Grammar) -> list[list[Word] | _Window]:
    """Windows of the run around the words the grammar could change: its cost grows with the
    length of what it reads, and plain words between need nothing."""
    parts: list[list[Word] | _Window] = []
    position = 0
    for start, end in _windows(run, grammar):
        parts.append(run[position:start])
        for chunk in range(start, end, MAX_WINDOW_WORDS):
            stop = min(end, chunk + MAX_WINDOW_WORDS)
            parts.append(_window(run[chunk:stop], grammar, final=stop == len(run)))
        position = end
    parts.append(run[position:])
    return parts


def _windows(run: list[Word], grammar: Grammar) -> list[tuple[int, int]]:
    """[start, end) ranges holding each word the grammar could change with a word of context
    after ("10 am", "$3.5 million", "5 km") and, for bare numbers, before ("Dec. 3"), where
    the grammar may read that word with it, or a whole whitelist entry ("World War II");
    overlapping ranges merge."""
    windows: list[tuple[int, int]] = []
    for i, word in enumerate(run):
        if len(word.text) > MAX_WORD_CHARS or not grammar.needs(word.text):
            continue  # over-long "words" are left to the engine as written
        previous = run[i - 1].text if i > 0 else ""
        following = run[i + 1].text if i + 1 < len(run) else ""
        before = CONTEXT_WORDS if _BARE_NUMBER.match(word.text) and grammar.context_needed(
            previous) else 0
        after = max(CONTEXT_WORDS if grammar.context_needed(following) else 0,
                    grammar.reach(word.text) - 1)
        start, end = max(0, i - before), min(len(run), i + after + 1)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _window(words: list[Word], grammar: Grammar, final: bool) -> _Window:
    text = " ".join(w.text for w in words)
    if final and grammar.language in _FINAL_DOT_MAKES_ORDINALS and _FINAL_NUMBER.search(text):
        # German grammar reads "Seite 1 von 10." as "...zehnte": a number ending the sentence
        # is a cardinal, so the grammar sees it without the full stop.
        return _Window(words, text[:-1], ".")
    return _Window(words, text)

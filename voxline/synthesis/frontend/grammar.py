"""NeMo's WFST normalisation grammars: compiled once into a cache, loaded, and used safely."""

from __future__ import annotations

import csv
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from voxline.synthesis.frontend.grammar_processes import GrammarProcesses
from voxline.synthesis.frontend.nemo import new_normalizer, quiet_nemo, spoken_or_written

logger = logging.getLogger(__name__)

# XTTS languages NeMo 1.2.0 has text-normalisation grammars for (pl, tr, nl, cs: none).
GRAMMAR_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ru", "hu", "ar", "hi", "zh", "ja", "ko")
# Prepared by a server by default: English first (required; compiled at setup, loaded before
# serving), then the languages whose grammars (with rules.py) were checked by table tests.
# pt's grammar raises on common inputs ("Em 1995."), ru has no deterministic grammar, and
# hu ar hi zh ja ko are not checked here: prepare them explicitly.
STARTUP_LANGUAGES = ("en",)
DEFAULT_LANGUAGES = ("en", "es", "fr", "de", "it")
_COMPLETE = ".complete"
# What makes a sentence worth the grammar besides its whitelist words: digits, symbols it
# reads out, and dotted tokens (domains, "e.g.").
_TRIGGER = re.compile(r"\d|[$€£¥₩₹¢%‰@&#+=/\\:°×÷½¼¾~^<>|*_§]|\w\.\w")
_EDGE_PUNCT = ",;:!?\"'()[]"
_MONTHS = frozenset("Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split())
# English: a plain lowercase word next to a number is read the same with or without it unless
# a class of the grammar reads it with the number: units, time suffixes and zones, months,
# scales ("10 am", "5 kbps", "3 million"). Those come from the grammar's own data.
_PLAIN_WORD = re.compile(r"^[a-z]{2,}[,.;:!?]?$")
_EN_COMBINING = ("measure/unit.tsv", "measure/unit_alternatives.tsv", "time/suffix.tsv",
                 "time/zone.tsv", "date/month_name.tsv", "date/month_abbr.tsv",
                 "date/year_suffix.tsv", "number/quantity_abbr.tsv")
_SCALES = ("hundred", "thousand", "million", "billion", "trillion", "quadrillion")


def grammar_language(language: str) -> str:
    """NeMo's code for a request language: the primary subtag ("en-US" -> en, zh-cn -> zh)."""
    return language.replace("_", "-").split("-")[0].lower()


def cache_root(cache_dir: Path) -> Path:
    """Grammars of this nemo-text-processing release; a new release compiles afresh."""
    return Path(cache_dir) / f"nemo-{version('nemo-text-processing')}"


def is_compiled(cache_dir: Path, language: str) -> bool:
    return (cache_root(cache_dir) / language / _COMPLETE).exists()


def compile_grammar(cache_dir: Path, language: str) -> Path:
    """Compile `language`'s grammars into the cache (CPU-bound: ~35 s for English, minutes for
    some others). Written to a temporary folder and renamed, so a killed compile leaves nothing
    half-written behind."""
    quiet_nemo()
    final = cache_root(cache_dir) / language
    if (final / _COMPLETE).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{language}-", dir=final.parent))
    try:
        new_normalizer(str(work), language)  # compiles into an empty folder
        (work / _COMPLETE).write_text(version("nemo-text-processing"))
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


class Grammar:
    """One language's loaded grammars: in child processes (`GrammarProcesses`, what servers
    use) or in this one (`InProcess`: the prepare CLI, tests of the grammar alone)."""

    def __init__(self, language: str, backend: InProcess | GrammarProcesses,
                 whitelist: dict[str, int]) -> None:
        self.language = language
        self._backend = backend
        self._whitelist = whitelist

    @classmethod
    def load(cls, cache_dir: Path, language: str, processes: int = 0) -> Grammar:
        """Load compiled grammars into `processes` children (0: into this process, ~0.3-1 s
        holding the GIL); raises FileNotFoundError if none are cached."""
        quiet_nemo()
        folder = cache_root(cache_dir) / language
        if not (folder / _COMPLETE).exists():
            raise FileNotFoundError(f"no compiled {language} grammars in {folder}")
        return _loaded(str(folder.resolve()), language, processes)

    def needs(self, text: str) -> bool:
        """Whether the grammar could change `text`: the fast path skips it when not."""
        if _TRIGGER.search(text):
            return True
        return any(w.strip(_EDGE_PUNCT) in self._whitelist for w in text.split())

    def context_needed(self, word: str) -> bool:
        """Whether a neighbour of a number may change how the grammar reads it. English: not
        for a plain lowercase word that no class reads with a number ("takes 3 to 5
        business days"), so windows are shorter (the grammar's cost grows with what it reads:
        25 vs 32 ms CPU per number-heavy reply); other languages keep every neighbour."""
        if self.language != "en" or not _PLAIN_WORD.match(word):
            return True
        return word.rstrip(",.;:!?") in combining_words(self.language)

    def reach(self, word: str) -> int:
        """How many words a whitelist entry starting with `word` spans ("World War II": 3)."""
        return self._whitelist.get(word.strip(_EDGE_PUNCT), 1)

    def is_abbreviation(self, word: str) -> bool:
        """A word ending in "." that the grammar expands ("Mr.", "Dec.") or a single letter."""
        stripped = word.strip(_EDGE_PUNCT)
        return stripped in self._whitelist or stripped.rstrip(".") in _MONTHS or (
            len(stripped) == 2 and stripped[0].isalpha())

    def normalize(self, text: str) -> str:
        return self.normalize_many([text])[0]

    def normalize_many(self, texts: Sequence[str]) -> list[str]:
        """Each text in spoken form (in parallel where the grammar runs in several processes);
        as written where the grammar cannot tag it: the engine's own front end reads those."""
        results = []
        for text, (spoken, error) in zip(texts, self._backend.normalize_many(texts),
                                         strict=True):
            if error is not None:  # never fail a request; never log its text
                logger.warning("%s grammar could not normalise %d characters: %s",
                               self.language, len(text), error)
            results.append(spoken)
        return results


class InProcess:
    """NeMo's Normalizer in this process. It keeps per-call state on itself (its token
    parser), so calls are serialised by a lock."""

    def __init__(self, normalizer) -> None:
        self._normalizer = normalizer
        self._lock = threading.Lock()

    def normalize_many(self, texts: Sequence[str]) -> list[tuple[str, str | None]]:
        with self._lock:
            return [spoken_or_written(self._normalizer, text) for text in texts]


@cache
def _loaded(folder: str, language: str, processes: int) -> Grammar:
    """One loaded Grammar per compiled folder, language and process count: the FSTs are
    read-only and calls are serialised per process, so all apps of a process (tests build
    many) share one instead of loading ~100 MB (and starting children) each time."""
    backend = (GrammarProcesses(folder, language, processes) if processes > 0
               else InProcess(new_normalizer(folder, language)))
    return Grammar(language, backend, whitelist_words(language))


@cache
def combining_words(language: str) -> frozenset[str]:
    """Lowercased words the grammar's data reads together with a number before them."""
    data = Path(str(files("nemo_text_processing") / "text_normalization" / language / "data"))
    words = set(_SCALES)
    for name in _EN_COMBINING:
        path = data / name
        if path.is_file():
            # Split by hand: the files hold bare quotes (inch: ") that csv would pair up.
            lines = path.read_text(encoding="utf-8").splitlines()
            words.update(line.split("\t")[0].strip().lower() for line in lines if line.strip())
    return frozenset(words)


@cache
def whitelist_words(language: str) -> dict[str, int]:
    """First words of the grammar's whitelist entries ("Mr.", "vs", "World" of "World War II"),
    each with the most words an entry starting with it has."""
    data = files("nemo_text_processing") / "text_normalization" / language / "data"
    folder = Path(str(data))
    if language == "en":
        paths = [folder / "whitelist" / "tts.tsv", folder / "whitelist" / "symbol.tsv"]
    else:
        paths = [folder / "whitelist.tsv", *sorted((folder / "whitelist").glob("*.tsv"))]
    words: dict[str, int] = {}
    for path in paths:
        if path.is_file() and not path.name.startswith(("asr", "ipa")):
            with path.open(encoding="utf-8") as handle:
                for row in csv.reader(handle, delimiter="\t"):
                    parts = row[0].split() if row else []
                    if parts:
                        words[parts[0]] = max(words.get(parts[0], 1), len(parts))
    return words

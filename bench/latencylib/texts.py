"""The fixed, versioned benchmark text set and the text → GPT length estimate."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS_DIR = REPO_ROOT / "bench" / "texts"
DEFAULT_TEXT_SET = "v1"
WORKLOADS = ("short", "medium", "long")

# XTTS v2: one GPT audio token is 1024 samples at 22.05 kHz, so 21.5 tokens per second of speech.
GPT_TOKENS_PER_SECOND = 22050 / 1024
# Typical read-speech rates in characters per second (spaces and punctuation included).
CHARS_PER_SECOND = {"en": 14.0, "de": 15.0, "es": 15.0, "fr": 15.0, "it": 15.0, "pt": 15.0}
DEFAULT_CHARS_PER_SECOND = 14.0


@dataclass(frozen=True)
class BenchText:
    """One line of the text set."""

    id: str
    workload: str
    language: str
    text: str


@dataclass(frozen=True)
class TextSet:
    """A named version of the text set."""

    version: str
    texts: tuple[BenchText, ...]

    def select(self, workload: str, languages: set[str] | None = None) -> list[BenchText]:
        """The texts of one workload, optionally limited to some languages, in file order."""
        return [
            t
            for t in self.texts
            if t.workload == workload and (languages is None or t.language in languages)
        ]

    def languages(self) -> list[str]:
        """Languages present in the set, in first-seen order."""
        return list(dict.fromkeys(t.language for t in self.texts))


def load_text_set(name_or_path: str = DEFAULT_TEXT_SET) -> TextSet:
    """Load `bench/texts/<name>.json`, or a JSON file at a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TEXTS_DIR / f"{name_or_path}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = tuple(BenchText(**item) for item in data["texts"])
    for t in texts:
        if t.workload not in WORKLOADS:
            raise ValueError(f"{path}: text {t.id} has unknown workload {t.workload!r}")
    ids = [t.id for t in texts]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: duplicate text ids")
    return TextSet(version=str(data["version"]), texts=texts)


def estimate_speech_seconds(text: str, language: str) -> float:
    """How long a person would take to say `text`, from its length."""
    rate = CHARS_PER_SECOND.get(language, DEFAULT_CHARS_PER_SECOND)
    return len(text.strip()) / rate


def estimate_gpt_tokens(text: str, language: str, cap: int | None = None) -> int:
    """GPT audio tokens the real XTTS v2 would generate for `text` (at least 1, at most cap)."""
    tokens = max(1, math.ceil(estimate_speech_seconds(text, language) * GPT_TOKENS_PER_SECOND))
    return tokens if cap is None else max(1, min(tokens, cap))


def split_sentences(text: str, language: str, limit: int = 250) -> list[str]:
    """The pieces the server synthesises one `engine.stream` call at a time.

    Uses the server's own splitter (voxline.text) when it imports; else a punctuation rule.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    try:
        from voxline.text import split_text
    except ImportError:
        pieces = re.split(r"(?<=[.!?])\s+", text.strip())
        return [p for p in pieces if p]
    return split_text(text.strip(), limit, language)


def forced_tokens_per_call(text: str, language: str, cap: int | None = None) -> tuple[int, int]:
    """(tokens to force per sentence, number of sentences) so that the whole text gets about
    the length the real model would give it.

    The server applies one min/max_new_tokens to every sentence it splits the text into, so
    the text's total estimate is spread evenly over its sentences.
    """
    count = max(1, len(split_sentences(text, language)))
    total = estimate_speech_seconds(text, language) * GPT_TOKENS_PER_SECOND
    tokens = max(1, round(total / count))
    return (tokens if cap is None else min(tokens, cap)), count

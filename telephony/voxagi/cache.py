"""A size-bounded folder of µ-law prompts and their word timings, written atomically and
evicted oldest first."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .log import get_logger

logger = get_logger(__name__)

EXTENSION = ".ulaw"
WORDS_EXTENSION = ".words.json"
_STALE_PART_S = 600.0


@dataclass(frozen=True)
class Prompt:
    """A cached prompt: the path to give STREAM FILE and the words its audio speaks."""

    path: str
    words: list[dict[str, Any]] = field(default_factory=list)


def prompt_key(text: str, voice: str, language: str, params: str) -> str:
    """A stable name for the audio of (text, voice, language, params)."""
    query = "&".join(sorted(p for p in params.split("&") if p))
    blob = "\0".join([text, voice, language, query, "ulaw", "8000"])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


class PromptCache:
    """Prompts as `<dir>/<key>.ulaw` beside their words in `<dir>/<key>.words.json`; Asterisk
    plays `<dir>/<key>` without the extension."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def sound_path(self, key: str) -> str:
        """The path to give STREAM FILE (no extension)."""
        return os.path.join(self.directory, key)

    def lookup(self, key: str) -> Prompt | None:
        """A cached prompt, marked recently used; None when its audio or words are missing or
        unreadable (then it is fetched and written again)."""
        path = self.sound_path(key)
        try:
            os.utime(path + EXTENSION)
            with open(path + WORDS_EXTENSION, encoding="utf-8") as handle:
                words = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(words, list):
            return None
        return Prompt(path, words)

    def store(self, key: str, audio: bytes, words: list[dict[str, Any]]) -> Prompt:
        """Write the words, then the audio (its presence completes the entry), each to a temp
        file renamed into place."""
        os.makedirs(self.directory, exist_ok=True)
        path = self.sound_path(key)
        self._write(key, path + WORDS_EXTENSION, json.dumps(words).encode("utf-8"))
        try:
            self._write(key, path + EXTENSION, audio)
        except BaseException:
            _unlink(path + WORDS_EXTENSION)
            raise
        self.evict(keep=key)
        return Prompt(path, words)

    def _write(self, key: str, target: str, data: bytes) -> None:
        """Write a file atomically."""
        # A name no other process or thread uses; Asterisk ignores the .part extension.
        temp = os.path.join(self.directory, f".{key}.{os.getpid()}.{threading.get_ident()}.part")
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temp, target)
        except BaseException:
            _unlink(temp)
            raise

    def evict(self, keep: str = "") -> None:
        """Delete the least recently used prompts until the folder fits, and stale temp files."""
        entries = []
        now = time.time()
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if name.endswith(".part") or _orphan_words(path):
                if now - stat.st_mtime > _STALE_PART_S:
                    _unlink(path)
            elif name.endswith(EXTENSION) and name != keep + EXTENSION:
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        try:
            total += os.path.getsize(self.sound_path(keep) + EXTENSION) if keep else 0
        except OSError:
            pass
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            _unlink(path)
            _unlink(path[: -len(EXTENSION)] + WORDS_EXTENSION)
            total -= size
            logger.info("evicted %s", path)


def _orphan_words(path: str) -> bool:
    """Whether `path` is a words file whose audio is gone (a write cut short, or evicted)."""
    if not path.endswith(WORDS_EXTENSION):
        return False
    return not os.path.exists(path[: -len(WORDS_EXTENSION)] + EXTENSION)


def _unlink(path: str) -> None:
    """Remove a file if it is still there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove %s: %s", path, exc)

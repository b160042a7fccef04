"""A size-bounded folder of µ-law prompts, written atomically and evicted oldest first."""

from __future__ import annotations

import hashlib
import os
import threading
import time

from .log import get_logger

logger = get_logger(__name__)

EXTENSION = ".ulaw"
_STALE_PART_S = 600.0


def prompt_key(text: str, voice: str, language: str, params: str) -> str:
    """A stable name for the audio of (text, voice, language, params)."""
    query = "&".join(sorted(p for p in params.split("&") if p))
    blob = "\0".join([text, voice, language, query, "ulaw", "8000"])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


class PromptCache:
    """Prompts as `<dir>/<key>.ulaw`; Asterisk plays `<dir>/<key>` without the extension."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def sound_path(self, key: str) -> str:
        """The path to give STREAM FILE (no extension)."""
        return os.path.join(self.directory, key)

    def lookup(self, key: str) -> str | None:
        """Return the sound path of a cached prompt and mark it recently used, else None."""
        path = self.sound_path(key) + EXTENSION
        try:
            os.utime(path)
        except OSError:
            return None
        return self.sound_path(key)

    def store(self, key: str, audio: bytes) -> str:
        """Write a prompt to a temp file, then rename it into place; returns its sound path."""
        os.makedirs(self.directory, exist_ok=True)
        # A name no other process or thread uses; Asterisk ignores the .part extension.
        temp = os.path.join(self.directory, f".{key}.{os.getpid()}.{threading.get_ident()}.part")
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(audio)
            os.replace(temp, self.sound_path(key) + EXTENSION)
        except BaseException:
            _unlink(temp)
            raise
        self.evict(keep=key)
        return self.sound_path(key)

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
            if name.endswith(".part"):
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
            total -= size
            logger.info("evicted %s", path)


def _unlink(path: str) -> None:
    """Remove a file if it is still there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove %s: %s", path, exc)

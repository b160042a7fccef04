"""The phrase cache: complete renders on disk, bounded in bytes, least recently used evicted.

A render is keyed by everything that shapes its bytes (see `phrase_key`), so a hit can be sent
as it is. Files live under `folder/GROUP/KEY.bin`, GROUP being the voice's latents digest, so a
deleted voice takes its renders with it. Writes are atomic (temp file + rename); a failed write
only warns, a vanished or unreadable file is a miss.

Several processes (replicas on one host) may share the folder: files are only ever replaced
whole, file times are the shared LRU order (a hit touches its file), and each process rescans
the folder now and then (`RESCAN_S`), so it sees the others' renders and evicts by what is
really on disk. A temp file is removed only once it is too old to be another writer's.

Identical requests arriving while one is being synthesised share it (single flight): the first
creates the render's `Tape`, every one of them reads that tape at its own pace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from voxline.tape import Tape, TapeReader

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the bytes of a render change for the same facts
_SUFFIX = ".bin"
RESCAN_S = 30.0  # how stale this process's view of a shared folder may get
_STALE_TMP_S = 600.0  # a temp file older than this is a crashed writer's, not a live one's


def phrase_key(**facts: object) -> str:
    """A digest of the facts (JSON-serialisable values), independent of their order."""
    text = json.dumps({"version": CACHE_VERSION, **facts}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, default=list)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Lookup:
    """What a request should do: send `data` (hit), or read `reader`: following a render in
    flight, or leading a new one (whose tape the caller must render, then `release`)."""

    kind: str  # "hit", "follow" or "lead"
    data: bytes | None = None
    reader: TapeReader | None = None


class PhraseCache:
    """Renders on disk keyed by `phrase_key`, at most `max_bytes` in all."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[str, tuple[str, int]] = OrderedDict()  # key -> (group, size)
        self._bytes = 0
        self._flights: dict[str, Tape] = {}
        self._scanned = time.monotonic()
        if self.enabled:
            self._scan()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def stats(self) -> tuple[int, int]:
        """(entries, bytes) on disk."""
        with self._lock:
            return len(self._index), self._bytes

    def lookup(self, key: str) -> Lookup:
        """A hit, a render in flight to follow, or the lead of a new one (then `release` it)."""
        while True:
            with self._lock:
                tape = self._flights.get(key)
                # A render every reader left is being cancelled: lead a new one instead.
                if tape is not None and tape.readers:
                    return Lookup("follow", reader=tape.reader())
                entry = self._index.get(key)
                if entry is None:
                    tape = self._flights[key] = Tape()
                    return Lookup("lead", reader=tape.reader())
                self._index.move_to_end(key)
            path = self._path(key, entry[0])
            try:
                data = path.read_bytes()
                os.utime(path)  # file times keep the LRU order across restarts
            except OSError:
                self._forget(key)  # gone or unreadable: the next turn leads a new render
                continue
            return Lookup("hit", data=data)

    def release(self, key: str, tape: Tape) -> None:
        """End a lead's flight: later lookups no longer join `tape`."""
        with self._lock:
            if self._flights.get(key) is tape:
                del self._flights[key]

    def store(self, key: str, group: str, data: bytes) -> None:
        """Write a render atomically and evict the least recently used beyond the bound."""
        if not data or len(data) > self.max_bytes:
            return
        folder = self.folder / group
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self._path(key, group))
            tmp = None
        except OSError as exc:
            logger.warning("could not write phrase cache entry %s: %s", key[:12], exc)
            return
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        with self._lock:
            old = self._index.pop(key, None)
            self._bytes += len(data) - (old[1] if old else 0)
            self._index[key] = (group, len(data))
            evicted = self._evict_locked()
        for old_key, old_group in evicted:
            self._path(old_key, old_group).unlink(missing_ok=True)
        if time.monotonic() - self._scanned > RESCAN_S:
            self._scan()

    def drop_group(self, group: str | None = None) -> int:
        """Remove every render of a group (a voice's digest), or all; return how many."""
        with self._lock:
            keys = [k for k, (g, _) in self._index.items() if group is None or g == group]
            groups = {self._index[k][0] for k in keys} | ({group} if group else set())
            for key in keys:
                self._bytes -= self._index.pop(key)[1]
        for name in groups:
            shutil.rmtree(self.folder / name, ignore_errors=True)
        return len(keys)

    def _path(self, key: str, group: str) -> Path:
        return self.folder / group / f"{key}{_SUFFIX}"

    def _forget(self, key: str) -> None:
        with self._lock:
            entry = self._index.pop(key, None)
            if entry is not None:
                self._bytes -= entry[1]

    def _evict_locked(self) -> list[tuple[str, str]]:
        evicted = []
        while self._bytes > self.max_bytes and self._index:
            key, (group, size) = self._index.popitem(last=False)
            self._bytes -= size
            evicted.append((key, group))
        return evicted

    def _scan(self) -> None:
        """Rebuild the index from the files, oldest use first; drop leftovers of crashes."""
        self._scanned = time.monotonic()
        found = sorted(self._files())
        with self._lock:
            self._index.clear()
            self._bytes = 0
            for _, key, group, size in found:
                self._index[key] = (group, size)
                self._bytes += size
            evicted = self._evict_locked()
        for key, group in evicted:
            self._path(key, group).unlink(missing_ok=True)
        logger.info("phrase cache: %d renders, %.1f MB of %.0f MB", len(self._index),
                    self._bytes / 1e6, self.max_bytes / 1e6)

    def _files(self) -> list[tuple[float, str, str, int]]:
        """(mtime, key, group, size) of every render on disk; removes stale temp files."""
        found = []
        stale = time.time() - _STALE_TMP_S
        for group in self._listdir(self.folder):
            for path in self._listdir(group):
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed meanwhile by another process
                if path.name.endswith(".tmp"):
                    if stat.st_mtime < stale:
                        path.unlink(missing_ok=True)
                elif path.suffix == _SUFFIX:
                    found.append((stat.st_mtime, path.stem, group.name, stat.st_size))
        return found

    @staticmethod
    def _listdir(folder: Path) -> list[Path]:
        try:
            return list(folder.iterdir())
        except OSError:  # absent, not a folder, or removed meanwhile (a deleted voice)
            return []

# Speech runs at roughly 10-20 characters per second; XTTS can stop early (a clipped word)
# or babble on (random weights, a runaway end token). Such renders must not be replayed.
MIN_CHARS_PER_S = 2.0
MAX_CHARS_PER_S = 40.0


def plausible_duration(text: str, audio_s: float) -> bool:
    """Whether `audio_s` seconds is a believable length for speaking `text`."""
    if audio_s <= 0:
        return False
    rate = len(text) / audio_s
    return MIN_CHARS_PER_S <= rate <= MAX_CHARS_PER_S

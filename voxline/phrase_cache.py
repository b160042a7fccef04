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
leads and renders, the others follow its bytes as they are produced.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


class Flight:
    """One render in progress, shared by identical requests while it is produced."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._parts: list[bytes] = []
        self._done = False
        self.ok = False
        self._followers = 0

    @property
    def followers(self) -> int:
        with self._cond:
            return self._followers

    def append(self, data: bytes) -> None:
        with self._cond:
            self._parts.append(data)
            self._cond.notify_all()

    def finish(self, ok: bool) -> None:
        with self._cond:
            self._done, self.ok = True, ok
            self._cond.notify_all()

    def data(self) -> bytes:
        with self._cond:
            return b"".join(self._parts)

    def join(self) -> None:
        with self._cond:
            self._followers += 1

    def leave(self) -> None:
        with self._cond:
            self._followers -= 1

    def wait_started(self, timeout: float) -> bool:
        """Wait for the first bytes; False when the render ended without any (or timed out)."""
        with self._cond:
            self._cond.wait_for(lambda: self._parts or self._done, timeout)
            return bool(self._parts)

    def follow(self, timeout: float) -> Iterator[bytes]:
        """Yield the render's bytes from the start, as they come, until it ends."""
        index = 0
        while True:
            with self._cond:
                ready = self._cond.wait_for(
                    lambda seen=index: len(self._parts) > seen or self._done, timeout)
                parts, done = self._parts[index:], self._done
            if not ready:
                logger.warning("shared render stalled for %.0f s; ending this copy", timeout)
                return
            index += len(parts)
            yield from parts
            if done and not parts:
                return


@dataclass
class Lookup:
    """What a request should do: send `data` (hit), follow `flight`, or lead it."""

    kind: str  # "hit", "follow" or "lead"
    data: bytes | None = None
    flight: Flight | None = None


class PhraseCache:
    """Renders on disk keyed by `phrase_key`, at most `max_bytes` in all."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._index: OrderedDict[str, tuple[str, int]] = OrderedDict()  # key -> (group, size)
        self._bytes = 0
        self._flights: dict[str, Flight] = {}
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
        """A hit, a render in flight to follow, or the lead of a new one (then call `finish`)."""
        while True:
            with self._lock:
                flight = self._flights.get(key)
                if flight is not None:
                    flight.join()
                    return Lookup("follow", flight=flight)
                entry = self._index.get(key)
                if entry is None:
                    flight = self._flights[key] = Flight()
                    return Lookup("lead", flight=flight)
                self._index.move_to_end(key)
            path = self._path(key, entry[0])
            try:
                data = path.read_bytes()
                os.utime(path)  # file times keep the LRU order across restarts
            except OSError:
                self._forget(key)  # gone or unreadable: the next turn leads a new render
                continue
            return Lookup("hit", data=data)

    def finish(self, key: str, group: str, flight: Flight, ok: bool) -> None:
        """End a lead: store the render if it is complete, then release its followers."""
        if ok:
            self.store(key, group, flight.data())
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.finish(ok)

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

    def drop_group(self, group: str) -> int:
        """Remove every render of a group (a deleted voice); return how many."""
        with self._lock:
            keys = [k for k, (g, _) in self._index.items() if g == group]
            for key in keys:
                self._bytes -= self._index.pop(key)[1]
        shutil.rmtree(self.folder / group, ignore_errors=True)
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

"""An on-disk cache of voice conditioning, keyed by clip bytes and model identity.

Entries are plain `.npz` arrays read with `allow_pickle=False`: a cache file can never execute
code. A corrupt entry is rebuilt; a failed write only warns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxline.engines.base import Conditioning

logger = logging.getLogger(__name__)


def cache_key(model_id: str, clip_paths: Sequence[Path]) -> str:
    """Digest of the model identity and every clip's bytes, in order."""
    digest = hashlib.sha256(model_id.encode())
    for path in clip_paths:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def conditioning_digest(conditioning: Conditioning) -> str:
    """Digest of the arrays themselves (names, dtypes, shapes, values): a voice's identity."""
    digest = hashlib.sha256()
    for name in sorted(conditioning):
        array = np.ascontiguousarray(conditioning[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class ConditioningCache:
    """Reads and writes conditioning arrays under `folder/<key>.npz`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> Conditioning | None:
        """The cached entry, or None when absent or unreadable (then it will be rebuilt)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                entry = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("voice cache entry %s is corrupt (%s); rebuilding", path.name, exc)
            return None
        if not entry or any(a.size == 0 or not np.all(np.isfinite(a)) for a in entry.values()):
            logger.warning("voice cache entry %s is invalid; rebuilding", path.name)
            return None
        return entry

    def remove(self, key: str) -> None:
        """Forget an entry (its voice was deleted)."""
        self.path(key).unlink(missing_ok=True)

    def store(self, key: str, entry: Conditioning) -> None:
        """Write atomically (temp file + rename); on failure warn and carry on."""
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **{name: np.asarray(a) for name, a in entry.items()})
            os.replace(tmp, self.path(key))
            tmp = None
        except OSError as exc:
            logger.warning("could not write voice cache entry %s: %s", key[:12], exc)
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

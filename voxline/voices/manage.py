"""Adding and deleting voices while the server runs: files, latent cache and voice bank.

An upload is decoded in a private temporary folder, staged as normalised WAVs in a hidden
`speakers/.upload-*` folder, cloned (through the scheduler, by the `compute` callable), and only
then renamed to `speakers/NAME/` and added to the bank: a failure at any step leaves nothing
behind, and a voice is either fully there or not at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import soundfile

from voxline.engines.base import Clip, Conditioning
from voxline.voices.bank import VoiceBank
from voxline.voices.clips import discover, is_safe_name
from voxline.voices.upload import STORE_RATE, CheckedClip, UploadError, check, check_voice, decode

logger = logging.getLogger(__name__)
MAX_CLIPS = 10
Compute = Callable[[list[Clip]], Conditioning]


def check_name(name: str, speakers_dir: Path) -> None:
    """A voice name users may create: the safe pattern, and a path inside the speakers folder."""
    if not name or len(name) > 64 or not is_safe_name(name):
        raise UploadError("bad_name",
                          "name must be 1-64 letters, digits, '_', '.' or '-', not starting with "
                          "'.' and without '..'")
    root = speakers_dir.resolve()
    if (root / name).resolve().parent != root:
        raise UploadError("bad_name", "name must not leave the speakers folder")


class VoiceManager:
    """Creates and deletes folder voices of a voice bank; one change at a time."""

    def __init__(self, speakers_dir: Path, scratch_dir: Path, max_seconds: float) -> None:
        self.speakers_dir = speakers_dir
        self.scratch_dir = scratch_dir  # where uploads are decoded
        self.max_seconds = max_seconds
        self._lock = threading.Lock()

    def exists(self, bank: VoiceBank, name: str) -> bool:
        return bank.get(name) is not None or name in discover(self.speakers_dir)

    def create(self, bank: VoiceBank, name: str, uploads: list[tuple[str, BinaryIO]],
               compute: Compute) -> dict[str, object]:
        """Make voice `name` from uploaded files (filename, stream); return what was done."""
        started = time.perf_counter()
        check_name(name, self.speakers_dir)
        if not bank.engine.can_clone:
            raise UploadError("cannot_clone",
                              f"the {bank.engine.name} engine cannot clone voices")
        if self.exists(bank, name):
            raise UploadError("voice_exists", f"voice {name!r} exists; delete it first")
        clips = self.check_clips(uploads)
        self.speakers_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".upload-{name}-", dir=self.speakers_dir))
        try:
            paths = []
            for i, clip in enumerate(clips, 1):
                path = staging / f"clip{i:02d}.wav"
                soundfile.write(str(path), clip.samples, STORE_RATE, subtype="PCM_16")
                paths.append(path)
            conditioning = compute([c.as_clip(p.name) for c, p in zip(clips, paths, strict=True)])
            key = bank.cache_key(paths)  # the same bytes after the rename
            with self._lock:
                if self.exists(bank, name):
                    raise UploadError("voice_exists", f"voice {name!r} exists")
                os.rename(staging, self.speakers_dir / name)
                staging = None
                bank.add(name, conditioning)
            bank.cache.store(key, conditioning)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        warnings = [w for c in clips for w in c.warnings]
        for warning in warnings:
            logger.warning("voice %s: %s", name, warning)
        return {
            "name": name,
            "clips": [{"file": c.filename, "seconds": round(c.seconds, 2),
                       "speech_seconds": round(c.speech_seconds, 2)} for c in clips],
            "speech_seconds": round(sum(c.speech_seconds for c in clips), 2),
            "warnings": warnings,
            "ready_s": round(time.perf_counter() - started, 3),
        }

    def delete(self, bank: VoiceBank, name: str) -> str:
        """Delete a folder voice: files, latent cache entry, bank; return its latents digest."""
        if bank.is_builtin(name):
            raise UploadError("builtin_voice",
                              f"{name!r} comes with the model and cannot be deleted")
        with self._lock:
            if name == bank.default:
                raise UploadError("default_voice",
                                  f"{name!r} is the default voice; set VOXLINE_DEFAULT_VOICE to "
                                  "another voice first")
            # Only a name listed in the folder touches files: no path is built from user text.
            paths = discover(self.speakers_dir).get(name, [])
            digest = bank.digest(name)
            if bank.remove(name) is None and not paths:
                raise UploadError("unknown_voice", f"voice {name!r} not found")
            if paths:
                bank.cache.remove(bank.cache_key(paths))
            for path in paths:
                path.unlink(missing_ok=True)
            if paths and paths[0].parent != self.speakers_dir:
                shutil.rmtree(paths[0].parent, ignore_errors=True)  # NAME/ and what is left in it
        return digest or ""

    def describe(self, bank: VoiceBank, name: str) -> dict[str, object]:
        """What is known of a voice: kind, clips on disk, whether it is the default."""
        paths = discover(self.speakers_dir).get(name, [])
        if bank.get(name) is None and not paths:
            raise UploadError("unknown_voice", f"voice {name!r} not found")
        failed = bank.report.failed.get(name)
        return {
            "name": name,
            "kind": "builtin" if bank.is_builtin(name) else "folder",
            "ready": bank.get(name) is not None,
            "default": name == bank.default,
            "clips": [p.name for p in paths],
            **({"error": failed} if failed else {}),
        }

    def check_clips(self, uploads: list[tuple[str, BinaryIO]]) -> list[CheckedClip]:
        """Decode, check and normalise uploaded clips (in a private folder, always removed)."""
        if not uploads:
            raise UploadError("missing_clip", "send one or more audio files")
        if len(uploads) > MAX_CLIPS:
            raise UploadError("too_many_clips", f"at most {MAX_CLIPS} clips per voice")
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="upload-", dir=self.scratch_dir) as tmp:
            clips = []
            for i, (filename, stream) in enumerate(uploads):
                path = Path(tmp) / f"in{i}"
                with path.open("wb") as fh:
                    shutil.copyfileobj(stream, fh)
                label = _printable(filename) or f"clip {i + 1}"
                clips.append(check(label, decode(path, label, self.max_seconds),
                                   self.max_seconds))
                path.unlink()
        check_voice(clips)
        return clips


def _printable(filename: str) -> str:
    """A client's file name made safe for messages and log lines."""
    return "".join(c if c.isprintable() else "?" for c in filename)[:100]

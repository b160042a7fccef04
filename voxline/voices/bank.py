"""The voice bank: every usable voice by name, with its conditioning ready for the engine."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from voxline.engines.base import Conditioning, Engine
from voxline.voices.cache import ConditioningCache, cache_key, conditioning_digest
from voxline.voices.clips import ClipError, discover, read_clip

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What a load did: for /health, the startup log and tests."""

    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # Folder voices an engine that cannot clone leaves aside: expected, not a failure.
    skipped: dict[str, str] = field(default_factory=dict)


class VoiceExists(KeyError):
    """A voice of that name is already in the bank."""


class VoiceBank:
    """Built-in voices of the engine plus the cloned voices of the speakers folder.

    Thread-safe: voices are added and removed while requests read them. A request keeps the
    conditioning it resolved, so removing a voice never disturbs a stream already using it.
    """

    def __init__(
        self, engine: Engine, speakers_dir: Path, cache_dir: Path, default: str | None = None
    ) -> None:
        self.engine = engine
        self.preferred_default = default
        self.default: str | None = None
        self.speakers_dir = speakers_dir
        self.cache = ConditioningCache(cache_dir / "latents")
        self._voices: dict[str, Conditioning] = {}
        self._digests: dict[str, str] = {}
        self._builtin: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self.report = LoadReport()

    def load(self) -> LoadReport:
        """Load built-in voices, then clone (or read from cache) every folder voice."""
        report = LoadReport()
        builtin = self.engine.builtin_voices()
        voices = dict(builtin)
        for name, paths in discover(self.speakers_dir).items():
            if not self.engine.can_clone:
                report.skipped[name] = f"the {self.engine.name} engine cannot clone voices"
                continue
            try:
                voices[name] = self._conditioning(name, paths, report)
            except ClipError as exc:
                report.failed[name] = str(exc)
                logger.warning("voice %s skipped: %s", name, exc)
        digests = {name: conditioning_digest(c) for name, c in voices.items()}
        with self._lock:
            self._voices = voices
            self._digests = digests
            self._builtin = frozenset(builtin)
            self.default = self._pick_default(voices)
        self.report = report
        logger.info(
            "voices: %d ready (%d computed, %d from cache), %d failed",
            len(voices), len(report.computed), len(report.cached), len(report.failed),
        )
        return report

    def cache_key(self, paths: list[Path]) -> str:
        """The latent-cache key of a voice made from these clips with this engine."""
        return cache_key(self.engine.model_id, paths)

    def _conditioning(self, name: str, paths: list[Path], report: LoadReport) -> Conditioning:
        key = self.cache_key(paths)
        entry = self.cache.load(key)
        if entry is not None:
            report.cached.append(name)
            return entry
        clips = [read_clip(p) for p in paths]
        entry = self.engine.compute_conditioning(clips)
        self.cache.store(key, entry)
        report.computed.append(name)
        return entry

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._voices)

    def get(self, name: str) -> Conditioning | None:
        with self._lock:
            return self._voices.get(name)

    def digest(self, name: str) -> str | None:
        """The digest of a voice's conditioning (phrase-cache keys use it)."""
        with self._lock:
            return self._digests.get(name)

    def is_builtin(self, name: str) -> bool:
        with self._lock:
            return name in self._builtin

    def add(self, name: str, conditioning: Conditioning) -> None:
        """Make a voice usable at once; raise VoiceExists if the name is taken."""
        digest = conditioning_digest(conditioning)
        with self._lock:
            if name in self._voices:
                raise VoiceExists(name)
            self._voices[name] = conditioning
            self._digests[name] = digest
        logger.info("voice %s added", name)

    def remove(self, name: str) -> Conditioning | None:
        """Forget a voice; return its conditioning, or None if there was none."""
        with self._lock:
            conditioning = self._voices.pop(name, None)
            self._digests.pop(name, None)
        if conditioning is None:
            return None
        logger.info("voice %s removed", name)
        return conditioning

    def _pick_default(self, voices: dict[str, Conditioning]) -> str | None:
        """The configured default, else `default`, else the first folder voice, else any."""
        for candidate in (self.preferred_default, "default"):
            if candidate and candidate in voices:
                return candidate
        folder_voices = [n for n in discover(self.speakers_dir) if n in voices]
        return (folder_voices or sorted(voices) or [None])[0]

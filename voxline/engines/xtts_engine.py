"""Coqui XTTS v2 through coqui-tts: loads once, clones voices, streams while it generates."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from voxline.engines.base import (
    Clip,
    Conditioning,
    Engine,
    EngineError,
    EngineStream,
    SynthesisParams,
)

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

        self._torch = torch
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
        self.languages = tuple(config.languages)
        self._model_id = _checkpoint_identity(checkpoint_dir)
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
        torch = self._torch
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
    ) -> XttsStream:
        schedule = params.chunk_schedule or (
            (params.stream_chunk_size,) if params.stream_chunk_size else self.chunk_schedule
        )
        return XttsStream(self, text, voice, language, params, schedule)


class XttsStream(EngineStream):
    """One utterance: its own prefix embedding, RNG state, KV cache (inside the generator),
    latents so far and crossfade tail, so that streams of different requests can take turns
    on the one model and each still produces exactly what it would alone.

    The loop mirrors coqui-tts's `Xtts.inference_stream`, with a chunk schedule instead of one
    fixed size. Its only shared state on the model is `gpt_inference.cached_prefix_emb` (set by
    `compute_embeddings`, read at every decode step) and torch's global RNG (sampling): both are
    swapped in at the start of each step and saved at its end.
    """

    OVERLAP = 1024  # samples crossfaded between chunks, as inference_stream's overlap_wav_len

    def __init__(
        self, engine: XttsEngine, text: str, voice: Conditioning, language: str,
        params: SynthesisParams, schedule: tuple[int, ...],
    ) -> None:
        torch = engine._torch
        model = engine.model
        self._engine = engine
        self._sizes = list(schedule)
        self._length_scale = 1.0 / max(params.speed, 0.05)
        lang = language.split("-")[0]
        tokens = model.tokenizer.encode(text.strip().lower(), lang=lang)
        if len(tokens) >= model.args.gpt_max_text_tokens:
            raise EngineError(f"text is {len(tokens)} tokens; XTTS takes fewer than "
                              f"{model.args.gpt_max_text_tokens}")
        self._rng = _seeded_rng_state(torch, params.seed, engine.device)
        device = engine.device
        self._embedding = torch.from_numpy(np.asarray(voice["speaker_embedding"])).to(device)
        latent = torch.from_numpy(np.asarray(voice["gpt_cond_latent"])).to(device)
        with torch.inference_mode():
            token_tensor = torch.IntTensor(tokens).unsqueeze(0).to(device)
            fake_inputs = model.gpt.compute_embeddings(latent, token_tensor)
        self._prefix = model.gpt.gpt_inference.cached_prefix_emb
        extra = {k: v for k, v in (("max_new_tokens", params.max_new_tokens),
                                   ("min_new_tokens", params.min_new_tokens)) if v is not None}
        self._generator = model.gpt.get_generator(
            fake_inputs=fake_inputs, top_k=params.top_k, top_p=params.top_p,
            temperature=params.temperature, do_sample=True, num_beams=1,
            num_return_sequences=1, length_penalty=float(params.length_penalty),
            repetition_penalty=float(params.repetition_penalty), output_attentions=False,
            output_hidden_states=True, return_dict_in_generate=True, **extra,
        )
        self._latents: list = []
        self._wav_prev = None
        self._wav_overlap = None
        self._done = False

    def step(self) -> np.ndarray | None:
        if self._done:
            return None
        size = self._sizes.pop(0) if len(self._sizes) > 1 else self._sizes[0]
        engine = self._engine
        torch = engine._torch
        autocast = (torch.autocast("cuda", dtype=torch.float16) if engine.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            engine.model.gpt.gpt_inference.store_prefix_emb(self._prefix)
            _set_rng_state(torch, self._rng, engine.device)
            is_end = self._advance(size)
            self._rng = _get_rng_state(torch, engine.device)
            chunk = self._decode(is_end)
        self._done = is_end
        return chunk.float().cpu().numpy().reshape(-1)

    def _advance(self, size: int) -> bool:
        """Generate up to `size` more tokens; True when generation has ended."""
        for _ in range(size):
            try:
                _token, latent = next(self._generator)
            except StopIteration:
                return True
            self._latents.append(latent)
        return False

    def _decode(self, is_end: bool):
        """Re-decode every latent so far (as inference_stream does) and cut the new part."""
        torch = self._engine._torch
        model = self._engine.model
        gpt_latents = torch.cat(self._latents, dim=0)[None, :]
        if self._length_scale != 1.0:
            gpt_latents = torch.nn.functional.interpolate(
                gpt_latents.transpose(1, 2), scale_factor=self._length_scale, mode="linear"
            ).transpose(1, 2)
        wav = model.hifigan_decoder(gpt_latents, g=self._embedding)
        chunk, self._wav_prev, self._wav_overlap = model.handle_chunks(
            wav.squeeze(), self._wav_prev, self._wav_overlap, self.OVERLAP, is_final=is_end
        )
        return chunk

    def close(self) -> None:
        self._done = True
        self._generator.close()
        self._latents = []


def _seeded_rng_state(torch, seed: int | None, device: str):
    """An RNG state of this stream's own: from its seed, or a fresh random one."""
    saved = _get_rng_state(torch, device)
    torch.manual_seed(seed if seed is not None else secrets.randbits(63))
    state = _get_rng_state(torch, device)
    _set_rng_state(torch, saved, device)
    return state


def _get_rng_state(torch, device: str):
    cuda = torch.cuda.get_rng_state() if device == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(torch, state, device: str) -> None:
    torch.set_rng_state(state[0])
    if device == "cuda" and state[1] is not None:
        torch.cuda.set_rng_state(state[1])


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

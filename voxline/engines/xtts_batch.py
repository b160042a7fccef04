"""XTTS generation that can take turns on one model, alone or in lockstep batches.

`XttsBatch` holds everything one generation needs apart from the shared model: the prefix
embedding (`gpt_inference.cached_prefix_emb`, which `compute_embeddings` writes and every decode
step reads), the torch RNG state (sampling draws from the global generator), the KV cache
(inside the HF generator), each row's latents so far and crossfade tail. Both shared pieces are
swapped in at the start of each step and saved at its end, so generations of different requests
can be stepped in any order and each produces exactly what it would alone.

A batch of one mirrors coqui-tts's `Xtts.inference_stream` (tested bit-exact against it), with a
chunk schedule instead of one fixed size. A batch of several rows runs one forward pass for all
of them: prefixes are left-padded under an attention mask, and mel positions count from the end
of the (padded) prefix, so each row sees what it would alone, within float tolerance. The rows
share one sampling draw per step, which is only equal to solo runs when sampling is greedy
(top_k=1): `batch_key` returns None otherwise, and such requests are never batched.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field

import numpy as np

from voxline.engines.base import EngineError, EngineStream, SynthesisParams, Utterance

OVERLAP = 1024  # samples crossfaded between chunks, as inference_stream's overlap_wav_len


def schedule_of(params: SynthesisParams, default: tuple[int, ...]) -> tuple[int, ...]:
    """The chunk sizes for a request: its own schedule, a fixed size, or the engine's."""
    if params.chunk_schedule:
        return params.chunk_schedule
    return (params.stream_chunk_size,) if params.stream_chunk_size else default


def batch_key(params: SynthesisParams, default: tuple[int, ...]) -> tuple | None:
    """Requests with equal keys may share a batch; None: this one must run alone."""
    if params.top_k != 1:
        return None  # batched sampling would not reproduce the request's solo audio
    return (params.temperature, params.top_p, params.repetition_penalty,
            params.length_penalty, params.min_new_tokens, params.max_new_tokens,
            schedule_of(params, default))


@dataclass
class _Row:
    """Per-utterance state inside a batch."""

    embedding: object
    length_scale: float
    latents: list = field(default_factory=list)
    wav_prev: object = None
    wav_overlap: object = None
    eos_seen: bool = False
    final: bool = False
    done: bool = False
    closed: bool = False
    pending: np.ndarray | None = None


class XttsBatch:
    """Lockstep generation of one or more utterances with identical sampling settings."""

    def __init__(self, engine, items: list[Utterance], schedule: tuple[int, ...]) -> None:
        torch = engine.torch
        model = engine.model
        self._engine = engine
        self._sizes = list(schedule)
        self.rows: list[_Row] = []
        embeddings = []
        with torch.inference_mode():
            for item in items:
                embeddings.append(self._prefix_of(item))
                speaker = np.asarray(item.voice["speaker_embedding"])
                self.rows.append(_Row(torch.from_numpy(speaker).to(engine.device),
                                      1.0 / max(item.params.speed, 0.05)))
            fake_inputs, mask = self._pad(embeddings)
        params = items[0].params
        self._rng = seeded_rng_state(torch, params.seed, engine.device)
        extra = {k: v for k, v in (("max_new_tokens", params.max_new_tokens),
                                   ("min_new_tokens", params.min_new_tokens)) if v is not None}
        gpt = model.gpt
        self._generator = gpt.gpt_inference.generate_stream(
            fake_inputs, bos_token_id=gpt.start_audio_token, pad_token_id=gpt.stop_audio_token,
            eos_token_id=gpt.stop_audio_token, max_length=gpt.max_gen_mel_tokens
            + fake_inputs.shape[-1], attention_mask=mask, top_k=params.top_k,
            top_p=params.top_p, temperature=params.temperature, do_sample=True, num_beams=1,
            num_return_sequences=1, length_penalty=float(params.length_penalty),
            repetition_penalty=float(params.repetition_penalty), output_attentions=False,
            output_hidden_states=True, return_dict_in_generate=True, **extra,
        )
        self._stop = gpt.stop_audio_token

    def _prefix_of(self, item: Utterance):
        engine = self._engine
        model = engine.model
        tokens = model.tokenizer.encode(item.text.strip().lower(),
                                        lang=item.language.split("-")[0])
        if len(tokens) >= model.args.gpt_max_text_tokens:
            raise EngineError(f"text is {len(tokens)} tokens; XTTS takes fewer than "
                              f"{model.args.gpt_max_text_tokens}")
        torch = engine.torch
        latent = torch.from_numpy(np.asarray(item.voice["gpt_cond_latent"])).to(engine.device)
        token_tensor = torch.IntTensor(tokens).unsqueeze(0).to(engine.device)
        model.gpt.compute_embeddings(latent, token_tensor)
        return model.gpt.gpt_inference.cached_prefix_emb

    def _pad(self, embeddings: list):
        """Left-pad the prefixes into one batch; return the generator's inputs and mask."""
        torch = self._engine.torch
        gpt = self._engine.model.gpt
        longest = max(e.shape[1] for e in embeddings)
        batch = len(embeddings)
        prefix = embeddings[0].new_zeros((batch, longest, embeddings[0].shape[2]))
        mask = torch.zeros((batch, longest + 1), dtype=torch.long, device=prefix.device)
        for i, emb in enumerate(embeddings):
            prefix[i, longest - emb.shape[1]:] = emb[0]
            mask[i, longest - emb.shape[1]:] = 1
        self._prefix = prefix
        fake_inputs = torch.ones((batch, longest + 1), dtype=torch.long, device=prefix.device)
        fake_inputs[:, -1] = gpt.start_audio_token
        return fake_inputs, mask

    @property
    def finished(self) -> bool:
        return all(r.done or r.closed for r in self.rows)

    def step(self) -> None:
        """Advance every open row by the next chunk size; leave each row's chunk in `pending`."""
        if self.finished:
            return
        size = self._sizes.pop(0) if len(self._sizes) > 1 else self._sizes[0]
        engine = self._engine
        torch = engine.torch
        autocast = (torch.autocast("cuda", dtype=torch.float16) if engine.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            engine.model.gpt.gpt_inference.store_prefix_emb(self._prefix)
            set_rng_state(torch, self._rng, engine.device)
            self._advance(size)
            self._rng = get_rng_state(torch, engine.device)
            for row in self.rows:
                if not (row.done or row.closed):
                    row.pending = self._decode(row).float().cpu().numpy().reshape(-1)
                    row.done = row.final

    def _advance(self, size: int) -> None:
        advance_rows(self.rows, self._generator, self._stop, size)

    def _decode(self, row: _Row):
        """Re-decode every latent so far (as inference_stream does) and cut the new part."""
        torch = self._engine.torch
        model = self._engine.model
        gpt_latents = torch.cat(row.latents, dim=0)[None, :]
        if row.length_scale != 1.0:
            gpt_latents = torch.nn.functional.interpolate(
                gpt_latents.transpose(1, 2), scale_factor=row.length_scale, mode="linear"
            ).transpose(1, 2)
        wav = model.hifigan_decoder(gpt_latents, g=row.embedding)
        chunk, row.wav_prev, row.wav_overlap = model.handle_chunks(
            wav.squeeze(), row.wav_prev, row.wav_overlap, OVERLAP, is_final=row.final
        )
        return chunk

    def close_row(self, index: int) -> None:
        self.rows[index].closed = True
        self.rows[index].latents = []
        if self.finished:
            self._generator.close()


def advance_rows(rows: list[_Row], generator, stop_token: int, size: int) -> None:
    """Generate up to `size` tokens for a batch; each row keeps its own latents and becomes
    final on the token after its end token, exactly where a solo generator stops."""
    for _ in range(size):
        live = [r for r in rows if not (r.final or r.done)]
        if not live:
            return
        try:
            tokens, latents = next(generator)
        except StopIteration:
            for row in live:
                row.final = True
            return
        for i, row in enumerate(rows):
            if row.final or row.done:
                continue
            if row.eos_seen:
                row.final = True
                continue
            row.latents.append(latents[i:i + 1])
            row.eos_seen = int(tokens[i]) == stop_token


class BatchRow(EngineStream):
    """One utterance of an `XttsBatch`, seen as a stream: stepping it steps the whole batch."""

    def __init__(self, batch: XttsBatch, index: int) -> None:
        self.batch = batch
        self.index = index

    def ready(self) -> bool:
        return self.batch.rows[self.index].pending is not None

    def step(self) -> np.ndarray | None:
        row = self.batch.rows[self.index]
        if row.pending is None:
            if row.done or row.closed:
                return None
            self.batch.step()
        chunk, row.pending = row.pending, None
        return chunk

    def close(self) -> None:
        if not self.batch.rows[self.index].closed:
            self.batch.close_row(self.index)


def seeded_rng_state(torch, seed: int | None, device: str):
    """An RNG state of the generation's own: from its seed, or a fresh random one."""
    saved = get_rng_state(torch, device)
    torch.manual_seed(seed if seed is not None else secrets.randbits(63))
    state = get_rng_state(torch, device)
    set_rng_state(torch, saved, device)
    return state


def get_rng_state(torch, device: str):
    cuda = torch.cuda.get_rng_state() if device == "cuda" else None
    return torch.get_rng_state(), cuda


def set_rng_state(torch, state, device: str) -> None:
    torch.set_rng_state(state[0])
    if device == "cuda" and state[1] is not None:
        torch.cuda.set_rng_state(state[1])

"""XTTS's GPT decoding with continuous batching: rows join and leave at any step.

Each row is one utterance with its own prefix, sampling settings (repetition penalty,
temperature, top_k, top_p, forced lengths) and its own `torch.Generator`, so the tokens a row
draws do not depend on which other rows share its forward passes. The running batch keeps one
KV cache per layer, left-padded to the longest row; a 2-D attention mask hides the padding.
A row joins with its prefix prefilled (with other newcomers) and its cache merged in; a row
leaves (end token, length limit, cancel, or to make room) by slicing its cache out, unpadded,
so it can rejoin later. One step mirrors a step of coqui-tts's `generate_stream` for each row:
the same logits processors on the same token history, then one multinomial draw.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from voxline.engines.base import SynthesisParams


@dataclass(eq=False)
class GptRow:
    """One utterance's decoding state; its KV cache lives here while it is out of the batch."""

    ids: object  # (1, n) token history as coqui's generator sees it: fake prefix, start, tokens
    processors: object
    generator: object
    limit: int  # at most this many new tokens (coqui: max_new_tokens, else max_gen_mel_tokens)
    prefix: object = None  # (1, P, D) prefix embedding until prefilled
    kv: list | None = None  # per layer (keys, values) of shape (1, H, length, d) while parked
    length: int = 0  # positions in this row's KV cache
    generated: int = 0
    last_token: int = 0  # the token the next step feeds (set by the prefill's draw)
    exhausted: bool = False  # its end token or its length limit has been produced


@dataclass
class StepOutput:
    """What one forward pass gave one row: its next token and that step's GPT latent."""

    row: GptRow
    token: int
    latent: object  # (1, D)


@dataclass(eq=False)
class GptBatch:
    """The running batch: rows in order and their left-padded KV cache, layer by layer."""

    torch: object
    gpt: object  # coqui's GPT (UnifiedVoice)
    rows: list[GptRow] = field(default_factory=list)
    cache: object = None  # a transformers DynamicCache, kept across steps (one copy per step)

    @property
    def keys(self) -> list:
        return [layer.keys for layer in self.cache.layers] if self.cache is not None else []

    @property
    def values(self) -> list:
        return [layer.values for layer in self.cache.layers] if self.cache is not None else []

    @property
    def length(self) -> int:
        return self.cache.get_seq_length() if self.cache is not None else 0

    def _set_cache(self, keys: list, values: list) -> None:
        from transformers import DynamicCache

        if not keys:
            self.cache = None
            return
        self.cache = DynamicCache()
        layer = _growing_layer_class()
        self.cache.layers = [layer(k, v) for k, v in zip(keys, values, strict=True)]

    def new_row(self, prefix, params: SynthesisParams, device: str) -> GptRow:
        """A row for a prefix embedding from `compute_embeddings` (not yet in the batch)."""
        torch = self.torch
        gpt = self.gpt
        ids = torch.ones((1, prefix.shape[1] + 1), dtype=torch.long, device=device)
        ids[0, -1] = gpt.start_audio_token
        generator = torch.Generator(device=device)
        generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))
        limit = params.max_new_tokens or gpt.max_gen_mel_tokens
        return GptRow(ids=ids, processors=processors_for(params, ids.shape[1], gpt.stop_audio_token,
                                                         device),
                      generator=generator, limit=limit, prefix=prefix)

    # Membership ----------------------------------------------------------------------------

    def prefill(self, rows: list[GptRow]) -> list[StepOutput]:
        """Run the newcomers' prefixes (left-padded together) and merge them into the batch."""
        torch = self.torch
        from transformers import DynamicCache

        longest = max(r.prefix.shape[1] for r in rows)
        prefix = rows[0].prefix.new_zeros((len(rows), longest, rows[0].prefix.shape[2]))
        mask = torch.zeros((len(rows), longest + 1), dtype=torch.long, device=prefix.device)
        for i, row in enumerate(rows):
            prefix[i, longest - row.prefix.shape[1]:] = row.prefix[0]
            mask[i, longest - row.prefix.shape[1]:] = 1
        ids = torch.ones((len(rows), longest + 1), dtype=torch.long, device=prefix.device)
        ids[:, -1] = self.gpt.start_audio_token
        inference = self.gpt.gpt_inference
        inference.store_prefix_emb(prefix)
        cache = DynamicCache()
        out = inference(input_ids=ids, past_key_values=cache, attention_mask=mask,
                        use_cache=True, output_hidden_states=True, return_dict=True)
        latents = inference.final_norm(out.hidden_states[-1][:, -1])
        for i, row in enumerate(rows):
            pad = longest - row.prefix.shape[1]
            row.kv = [(layer.keys[i:i + 1, :, pad:], layer.values[i:i + 1, :, pad:])
                      for layer in cache.layers]
            row.length = longest + 1 - pad
            row.prefix = None
        self.join(rows)
        return self._sample(out.logits[:, -1, :], latents, rows)

    def join(self, rows: list[GptRow]) -> None:
        """Merge parked rows (each with its own unpadded cache) into the running batch."""
        if not rows:
            return
        if not self.rows and len(rows) == 1:  # alone: adopt its tensors, no copy
            row = rows[0]
            self._set_cache([k for k, _ in row.kv], [v for _, v in row.kv])
            self.rows, row.kv = [row], None
            return
        length = max([self.length] + [r.length for r in rows])
        parts_k = [[self._pad(k, length)] for k in self.keys] or [[] for _ in rows[0].kv]
        parts_v = [[self._pad(v, length)] for v in self.values] or [[] for _ in rows[0].kv]
        for row in rows:
            for layer, (k, v) in enumerate(row.kv):
                parts_k[layer].append(self._pad(k, length))
                parts_v[layer].append(self._pad(v, length))
            row.kv = None
        cat = self.torch.cat
        self._set_cache([cat(p, dim=0) for p in parts_k], [cat(p, dim=0) for p in parts_v])
        self.rows = self.rows + list(rows)

    def leave(self, rows: list[GptRow], keep_cache: bool = True) -> None:
        """Take rows out of the batch; with `keep_cache` each keeps its own unpadded cache."""
        gone = [r for r in rows if r in self.rows]
        if not gone:
            return
        length = self.length
        for row in gone if keep_cache else ():
            i = self.rows.index(row)
            pad = length - row.length
            row.kv = [(k[i:i + 1, :, pad:], v[i:i + 1, :, pad:])
                      for k, v in zip(self.keys, self.values, strict=True)]
        stay = [i for i, r in enumerate(self.rows) if r not in gone]
        self.rows = [self.rows[i] for i in stay]
        if not self.rows:
            self.cache = None
            return
        trim = length - max(r.length for r in self.rows)  # columns that are padding for all
        if len(stay) < len(gone) + len(stay) or trim:
            index = self.torch.tensor(stay, device=self.keys[0].device)
            self._set_cache([k.index_select(0, index)[:, :, trim:] for k in self.keys],
                            [v.index_select(0, index)[:, :, trim:] for v in self.values])

    def _pad(self, tensor, length: int):
        missing = length - tensor.shape[2]
        if missing == 0:
            return tensor
        return self.torch.nn.functional.pad(tensor, (0, 0, missing, 0))

    # Decoding ------------------------------------------------------------------------------

    def step(self) -> list[StepOutput]:
        """One forward pass for every row in the batch: each gets its next token and latent."""
        torch = self.torch
        inference = self.gpt.gpt_inference
        rows = self.rows
        device = self.cache.layers[0].keys.device
        tokens = torch.tensor([[r.last_token] for r in rows], dtype=torch.long, device=device)
        # Mel positions count from each row's start token, as coqui's forward computes them.
        positions = torch.tensor([[r.generated] for r in rows], dtype=torch.long, device=device)
        emb = inference.embeddings(tokens) + inference.pos_embedding.emb(positions)
        length = self.length
        pads = torch.tensor([length - r.length for r in rows], device=device)
        mask = (torch.arange(length + 1, device=device)[None] >= pads[:, None]).long()
        out = inference.transformer(inputs_embeds=emb, past_key_values=self.cache,
                                    attention_mask=mask, use_cache=True, return_dict=True)
        for row in rows:
            row.length += 1
        hidden = out.last_hidden_state
        logits = inference.lm_head(hidden)[:, -1, :]
        return self._sample(logits, inference.final_norm(hidden[:, -1]), rows)

    def _sample(self, logits, latents, rows: list[GptRow]) -> list[StepOutput]:
        """Each row's processors on its own history, then one draw from its own generator."""
        torch = self.torch
        drawn = []
        for i, row in enumerate(rows):
            scores = row.processors(row.ids, logits[i:i + 1].to(copy=True, dtype=torch.float32))
            probs = torch.nn.functional.softmax(scores, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=row.generator)
            row.ids = torch.cat([row.ids, token], dim=-1)
            drawn.append(token)
        values = torch.cat(drawn).view(-1).tolist()  # one device sync for the whole batch
        stop = self.gpt.stop_audio_token
        outputs = []
        for i, (row, value) in enumerate(zip(rows, values, strict=True)):
            row.generated += 1
            row.last_token = value
            row.exhausted = value == stop or row.generated >= row.limit
            outputs.append(StepOutput(row, value, latents[i:i + 1]))
        return outputs


_GROWING = None


def _growing_layer_class():
    """A transformers cache layer that writes each step into spare capacity instead of
    concatenating (which copies the whole cache every step; ~4x slower here at 8 rows)."""
    global _GROWING
    if _GROWING is not None:
        return _GROWING
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def __init__(self, keys, values) -> None:
            super().__init__()
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self._k = self._v = None
            self._store(keys, values, 0)

        def _store(self, keys, values, at: int) -> None:
            end = at + keys.shape[2]
            if self._k is None or end > self._k.shape[2]:
                shape = (*keys.shape[:2], max(2 * end, 64), keys.shape[3])
                old_k, old_v = self._k, self._v
                self._k, self._v = keys.new_empty(shape), values.new_empty(shape)
                if old_k is not None:
                    self._k[:, :, :at] = old_k[:, :, :at]
                    self._v[:, :, :at] = old_v[:, :, :at]
            self._k[:, :, at:end] = keys
            self._v[:, :, at:end] = values
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]

        def update(self, key_states, value_states, *args, **kwargs):
            self._store(key_states, value_states, self.keys.shape[2])
            return self.keys, self.values

    _GROWING = GrowingLayer
    return _GROWING


def processors_for(params: SynthesisParams, prompt_length: int, stop_token: int, device: str):
    """The logits processors transformers' `generate` builds for coqui's sampling call, in
    the same order (penalty, minimum length, temperature, top-k, top-p)."""
    from transformers import (
        LogitsProcessorList,
        MinNewTokensLengthLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    chain = []
    if params.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(float(params.repetition_penalty)))
    if params.min_new_tokens:
        chain.append(MinNewTokensLengthLogitsProcessor(prompt_length, params.min_new_tokens,
                                                       stop_token, device=device))
    if params.temperature != 1.0:
        chain.append(TemperatureLogitsWarper(params.temperature))
    if params.top_k:
        chain.append(TopKLogitsWarper(top_k=params.top_k, min_tokens_to_keep=1))
    if params.top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p=params.top_p, min_tokens_to_keep=1))
    return LogitsProcessorList(chain)

"""XTTS streams that advance alone or together, each producing exactly its solo audio.

An `XttsStream` is one utterance: its GPT row (prefix, token history, sampling settings, own RNG,
KV cache; see `xtts_decode`) and its vocoder row (latents so far, crossfade tail; see
`xtts_vocoder`). The engine's one `XttsBatcher` advances any set of streams the scheduler
picks: rows join the running GPT batch at any decode step (prefilled with the other
newcomers) and leave at any step, and the chunks of rows due together are vocoded as one batch.

A stream alone mirrors coqui-tts's `Xtts.inference_stream` (tested bit-exact against it) with a
chunk schedule instead of one fixed size: a chunk is due when it has its size in tokens, and
the last one when the row is exhausted (its end token or length limit), exactly where coqui's
generator stops. Nothing is shared between streams but the model, so no state is swapped.

Words: an utterance's final chunk carries all of its words (a `TimedChunk`), timed by the
batcher's `aligner` over the utterance's real length: estimated by espeak-ng phoneme weight
today (`piper_words.PhonemeWeightEstimator`); a model-derived alignment would replace it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import numpy as np

from voxline.engines.base import (
    Batcher,
    EngineError,
    EngineStats,
    EngineStream,
    TimedChunk,
    Utterance,
)
from voxline.engines.piper_words import PhonemeWeightEstimator
from voxline.engines.word_estimate import WordAligner, shift
from voxline.engines.xtts_decode import GptBatch, GptRow, StepOutput
from voxline.engines.xtts_vocoder import VocoderRow, vocode
from voxline.scheduling.costs import StepCosts

logger = logging.getLogger(__name__)


def schedule_of(params, default: tuple[int, ...]) -> tuple[int, ...]:
    """The chunk sizes for a request: its own schedule, a fixed size, or the engine's."""
    if params.chunk_schedule:
        return params.chunk_schedule
    return (params.stream_chunk_size,) if params.stream_chunk_size else default


class XttsStream(EngineStream):
    """One utterance: stepping it alone advances only it; the batcher may advance it with
    others."""

    def __init__(self, batcher: XttsBatcher, gpt: GptRow, vocoder: VocoderRow,
                 schedule: tuple[int, ...], item: Utterance) -> None:
        self._batcher = batcher
        self.item = item
        self.samples = 0  # audio returned so far
        self.gpt = gpt
        self.vocoder = vocoder
        self._sizes = list(schedule)
        self.count = 0  # tokens in the chunk being made
        self.ended = False  # the GPT row is exhausted and out of the batch
        self.done = False  # the final chunk has been returned
        self.closed = False

    @property
    def batcher(self) -> XttsBatcher:
        return self._batcher

    @property
    def size(self) -> int:
        return self._sizes[0]

    @property
    def steps_to_chunk(self) -> int:
        """Decode steps until this stream's next chunk is due (for the scheduler's costs)."""
        return max(1, self.size - self.count)

    def due(self) -> bool | None:
        """None: not due; False: a chunk is due; True: the final chunk is due."""
        if self.done or self.closed:
            return None
        if self.count >= self.size:
            return False
        return True if self.ended else None

    def chunk_sent(self, final: bool) -> None:
        self.count = 0
        self.done = final
        if len(self._sizes) > 1:
            self._sizes.pop(0)

    def step(self) -> np.ndarray | TimedChunk | None:
        if self.done or self.closed:
            return None
        return self._batcher.advance([self], lambda: False)[self]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._batcher.release(self)


class XttsBatcher(Batcher):
    """The engine's running GPT batch and the vocoder; the scheduler's thread calls it."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self._torch = engine.torch
        self.gpt = GptBatch(engine.torch, engine.model.gpt)
        self.stats = EngineStats()
        self.aligner: WordAligner = PhonemeWeightEstimator()
        # Seconds of one decode step by rows, from every step (the scheduler reads it).
        self.step_costs = StepCosts()

    def open(self, item: Utterance, schedule: tuple[int, ...]) -> XttsStream:
        """A stream for one utterance: its prefix computed, not yet in the batch."""
        engine = self._engine
        torch = self._torch
        model = engine.model
        tokens = model.tokenizer.encode(item.text.strip().lower(),
                                        lang=item.language.split("-")[0])
        if len(tokens) >= model.args.gpt_max_text_tokens:
            raise EngineError(f"text is {len(tokens)} tokens; XTTS takes fewer than "
                              f"{model.args.gpt_max_text_tokens}")
        with torch.inference_mode():
            latent = torch.from_numpy(np.asarray(item.voice["gpt_cond_latent"])).to(engine.device)
            token_tensor = torch.IntTensor(tokens).unsqueeze(0).to(engine.device)
            model.gpt.compute_embeddings(latent, token_tensor)
            prefix = model.gpt.gpt_inference.cached_prefix_emb
            speaker = np.asarray(item.voice["speaker_embedding"])
            embedding = torch.from_numpy(speaker).to(engine.device)
        gpt_row = self.gpt.new_row(prefix, item.params, engine.device)
        vocoder_row = VocoderRow(embedding, 1.0 / max(item.params.speed, 0.05))
        return XttsStream(self, gpt_row, vocoder_row, schedule, item)

    def release(self, stream: XttsStream) -> None:
        """Drop a closed stream's KV cache and latents."""
        self.gpt.leave([stream.gpt], keep_cache=False)
        stream.gpt.kv = None
        stream.vocoder.latents = []

    def advance(self, streams: list[EngineStream], interrupt: Callable[[], bool],
                ) -> dict[EngineStream, np.ndarray | TimedChunk | None]:
        mine = [s for s in streams if isinstance(s, XttsStream) and s.batcher is self]
        result: dict[EngineStream, np.ndarray | TimedChunk | None] = {
            s: None for s in mine if s.done or s.closed}
        live = [s for s in mine if s not in result]
        if not live:
            return result
        torch = self._torch
        autocast = (torch.autocast("cuda", dtype=torch.float16) if self._engine.fp16
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            self._decode_until_due(live, interrupt)
            result.update(self._vocode([s for s in live if s.due() is not None]))
        return result

    def _decode_until_due(self, live: list[XttsStream], interrupt: Callable[[], bool]) -> None:
        """Make the GPT batch hold exactly the live rows not yet ended, then decode until one
        of them has a chunk due (or `interrupt` asks to regroup)."""
        rows = {s.gpt: s for s in live if not s.ended}
        self.gpt.leave([r for r in self.gpt.rows if r not in rows])  # parked, cache kept
        newcomers = [r for r in rows if r.prefix is not None]
        self.gpt.join([r for r in rows if r.kv is not None])
        if newcomers:
            self._take(self._timed(lambda: self.gpt.prefill(newcomers), len(newcomers)), rows)
        while not any(s.due() is not None for s in live) and self.gpt.rows:
            self._take(self._timed(self.gpt.step, len(self.gpt.rows), self.step_costs), rows)
            if interrupt():
                return

    def _timed(self, fn: Callable[[], list[StepOutput]], rows: int,
               costs: StepCosts | None = None) -> list[StepOutput]:
        started = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - started
        self.stats.observe_step(rows, seconds)
        if costs is not None:
            costs.observe(rows, seconds)
        return out

    def measure_step_costs(self, voice, sizes: tuple[int, ...] = (1, 2, 4, 8),
                           steps: int = 6) -> dict[int, float]:
        """Time decode steps at each batch size (startup calibration on the device: a row is
        nearly free on a GPU, costly on a CPU): the median of `steps` steps after one warm-up
        pass over all sizes. Live steps refine the table from then on."""
        from voxline.engines.base import SynthesisParams

        params = SynthesisParams(min_new_tokens=steps + 2, max_new_tokens=steps + 2,
                                 top_k=1, seed=0)
        live = self.step_costs
        seen: dict[int, list[float]] = {}
        try:
            for _warm_up_first in (True, False):
                seen.clear()
                self.step_costs = _Recorder(seen)
                for size in sizes:
                    streams = [self.open(Utterance("Hello there.", voice, "en", params),
                                         (steps + 2,)) for _ in range(size)]
                    counted = iter(range(steps))
                    try:
                        self.advance(streams,
                                     lambda counted=counted: next(counted, None) is None)
                    finally:
                        for stream in streams:
                            stream.close()
        finally:
            self.step_costs = live
        for rows, seconds in seen.items():
            live.seed(rows, sorted(seconds)[len(seconds) // 2])
        logger.info("decode step seconds by rows: %s", live.table())
        return live.table()


    def _take(self, outputs: list[StepOutput], streams: dict[GptRow, XttsStream]) -> None:
        ended = []
        for out in outputs:
            stream = streams[out.row]
            stream.vocoder.latents.append(out.latent)
            stream.count += 1
            if out.row.exhausted:
                stream.ended = True
                ended.append(out.row)
        self.gpt.leave(ended, keep_cache=False)

    def _vocode(self, due: list[XttsStream]) -> dict[EngineStream, np.ndarray | TimedChunk]:
        if not due:
            return {}
        started = time.perf_counter()
        finals = [bool(s.due()) for s in due]
        chunks = vocode(self._engine.model.hifigan_decoder, self._torch,
                        [(s.vocoder, f) for s, f in zip(due, finals, strict=True)])
        out: dict[EngineStream, np.ndarray | TimedChunk] = {}
        for stream, final, chunk in zip(due, finals, chunks, strict=True):
            stream.chunk_sent(final)
            samples = chunk.float().cpu().numpy().reshape(-1)
            stream.samples += len(samples)
            out[stream] = self._with_words(stream, samples) if final else samples
            self.stats.audio_s += len(samples) / self._engine.sample_rate
        self.stats.vocoder_s += time.perf_counter() - started
        return out

    def _with_words(self, stream: XttsStream, samples: np.ndarray) -> TimedChunk:
        """The final chunk of an utterance with all its words, counted from this chunk."""
        item = stream.item
        words = self.aligner(item.text, stream.samples, item.language)
        return TimedChunk(samples, shift(words, stream.samples - len(samples)))

class _Recorder:
    """Collects step times by rows during a calibration."""

    def __init__(self, seen: dict[int, list[float]]) -> None:
        self._seen = seen

    def observe(self, rows: int, seconds: float) -> None:
        self._seen.setdefault(rows, []).append(seconds)

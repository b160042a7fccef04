"""The small interface every speech engine offers the server."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

# Conditioning of one voice: plain named arrays, so the voice bank can cache them without
# pickle and without importing torch.
Conditioning = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Clip:
    """One reference recording of a voice: mono float32 samples at their own rate."""

    samples: np.ndarray
    sample_rate: int
    source: str


@dataclass(frozen=True)
class SynthesisParams:
    """Validated sampling parameters of one request (engines ignore those they lack)."""

    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 5.0
    length_penalty: float = 1.0
    speed: float = 1.0
    stream_chunk_size: int | None = None  # a fixed chunk size instead of the schedule
    seed: int | None = None
    # Forcing the GPT output length makes random-weight checkpoints usable for tests and
    # latency benchmarks; real voices leave both unset.
    min_new_tokens: int | None = None
    max_new_tokens: int | None = None
    # GPT tokens per chunk: the first entries for the first chunks, the last one repeats.
    # None: the engine's configured schedule; `stream_chunk_size` in a request fixes one size.
    chunk_schedule: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Word:
    """One spoken word of an utterance and where it sounds.

    `start`/`end` are samples counted from the start of the chunk that carries the word (a
    word that began in an earlier chunk has a negative `start`); `char_start`/`char_end` are
    offsets into the utterance's text. `estimated`: spread over the audio by weight, not
    measured by the model.
    """

    text: str
    start: int
    end: int
    char_start: int
    char_end: int
    estimated: bool = False


@dataclass(frozen=True)
class TimedChunk:
    """Audio with the words whose last sample it carries (engines that know their timing).
    Engines that do not know word timing yield plain float32 arrays."""

    samples: np.ndarray
    words: tuple[Word, ...] = ()

    def __len__(self) -> int:
        return len(self.samples)


def chunk_parts(chunk: np.ndarray | TimedChunk) -> tuple[np.ndarray, tuple[Word, ...]]:
    """The samples and words of an engine chunk, whichever form it has."""
    if isinstance(chunk, TimedChunk):
        return chunk.samples, chunk.words
    return chunk, ()


@dataclass(frozen=True)
class Utterance:
    """One sentence to speak, with everything that shapes its audio."""

    text: str
    voice: Conditioning
    language: str
    params: SynthesisParams


class EngineStream(ABC):
    """One request's synthesis in progress: per-request state apart from the shared model.

    The scheduler calls `step` from its one thread, interleaving streams of different
    requests; each call computes the next chunk.
    """

    @abstractmethod
    def step(self) -> np.ndarray | None:
        """Compute and return the next float32 chunk, or None when the utterance is done."""

    @abstractmethod
    def close(self) -> None:
        """Free what the stream holds (KV cache, generator); safe to call twice."""

    @property
    def batcher(self) -> Batcher | None:
        """What can advance this stream together with others of its engine (None: alone)."""
        return None


class Batcher(ABC):
    """Advances several streams of one engine with shared forward passes (continuous
    batching): the scheduler picks which streams advance; each gets exactly its solo audio."""

    @abstractmethod
    def advance(self, streams: list[EngineStream],
                interrupt: Callable[[], bool]) -> dict[EngineStream, np.ndarray | None]:
        """Compute until one or more of `streams` has its next chunk (None: it has ended), or
        until `interrupt()` says the set of streams should change; return those chunks."""


@dataclass
class EngineStats:
    """Throughput counters an engine keeps for /metrics (written by the scheduler's thread)."""

    row_buckets: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    row_counts: list[int] = field(default_factory=lambda: [0] * 8)  # per bucket, then +Inf
    steps: int = 0
    rows: int = 0  # sum of rows over steps
    tokens: int = 0
    gpt_s: float = 0.0
    vocoder_s: float = 0.0
    audio_s: float = 0.0

    def observe_step(self, rows: int, seconds: float) -> None:
        """One GPT forward pass over `rows` rows, each producing one token."""
        index = next((i for i, b in enumerate(self.row_buckets) if rows <= b),
                     len(self.row_buckets))
        self.row_counts[index] += 1
        self.steps += 1
        self.rows += rows
        self.tokens += rows
        self.gpt_s += seconds


class GeneratorStream(EngineStream):
    """Adapts an engine whose synthesis is a plain generator (Piper, tone, test fakes)."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self._chunks = chunks

    def step(self) -> np.ndarray | None:
        return next(self._chunks, None)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class EngineError(RuntimeError):
    """The engine could not be loaded or could not synthesise."""


class Engine(ABC):
    """A loaded speech model: call `stream` from one thread at a time (the scheduler's job)."""

    name: str = "engine"
    sample_rate: int = 24000
    languages: tuple[str, ...] = ("en",)
    # Languages the model has but cannot serve here (e.g. a missing front-end package): reason.
    unavailable_languages: Mapping[str, str] = MappingProxyType({})
    device: str = "cpu"
    can_clone: bool = False
    # Takes espeak phonemes inline as `[[...]]` (Piper): SSML <phoneme> and lexicon phonemes.
    takes_phonemes: bool = False
    # Steps of different streams that may run at once on worker threads (1: the model is
    # stepped by one thread at a time, as XTTS's shared per-call state requires).
    parallel_renders: int = 1

    @property
    def model_id(self) -> str:
        """An identity of the loaded weights: part of every voice-cache key."""
        return self.name

    def builtin_voices(self) -> dict[str, Conditioning]:
        """Voices that come with the model itself (studio speakers, Piper voices)."""
        return {}

    def compute_conditioning(self, clips: list[Clip]) -> Conditioning:
        """Turn reference clips into the conditioning `stream` takes."""
        raise EngineError(f"the {self.name} engine cannot clone voices")

    def sentence_limit(self, language: str) -> int:
        """Longest text, in characters, that one `stream` call takes safely."""
        return 250

    def token_limit(self) -> int | None:
        """The most output tokens one sentence may be forced to (None: not a token model)."""
        return None

    @abstractmethod
    def stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> Iterator[np.ndarray]:
        """Yield float32 mono chunks at `sample_rate` while they are generated."""

    def open_stream(
        self, text: str, voice: Conditioning, language: str, params: SynthesisParams
    ) -> EngineStream:
        """Start synthesising `text`; engines with their own per-request state override this."""
        return GeneratorStream(self.stream(text, voice, language, params))

    @property
    def stats(self) -> EngineStats | None:
        """Throughput counters (rows per step, tokens, vocoder time), if the engine keeps them."""
        return None

    def warmup(self, voice: Conditioning) -> None:
        """Run one short synthesis so the first real request does not pay for lazy setup."""
        # Capped: real weights stop by themselves well before 40 tokens ("Hello." is about
        # 20), random-weight benchmark checkpoints would otherwise run to their maximum.
        params = SynthesisParams(max_new_tokens=40)
        for _ in self.stream("Hello.", voice, self.languages[0], params):
            pass

    def info(self) -> dict[str, object]:
        """Facts for /health."""
        return {"engine": self.name, "device": self.device, "sample_rate": self.sample_rate}

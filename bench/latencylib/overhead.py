"""Server overhead: the engine's first chunk called in-process vs. TTFA through gunicorn.

The in-process side is built exactly as the server builds it (the server's Settings from the
same `VOXLINE_*` environment, its engine loader, its voice bank, its sentence splitter, its
parameter defaults), so the difference is what HTTP, validation, the scheduler and the encoder
add. One HTTP request (concurrency 1) alternates with one in-process call, so drift in machine
load hits both alike.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .client import RequestResult, Target, stream_tts
from .stats import describe

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LocalEngine:
    """An engine loaded in this process, with the voice the HTTP side asks for by name."""

    engine: object
    voice_name: str
    voice: Mapping
    sentence_split: Callable[[str, int, str], list[str]]

    def stream(self, text: str, language: str, params) -> Iterator:
        """What the server's job runs: each sentence through `engine.stream`, in order."""
        limit = self.engine.sentence_limit(language)
        for sentence in self.sentence_split(text, limit, language):
            yield from self.engine.stream(sentence, self.voice, language, params)


def load_local_engine(env: Mapping[str, str], speaker: str | None) -> LocalEngine:
    """Load the engine and voice a server started with `env` serves."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from voxline.engines.select import choose_engine, load_engine
    from voxline.engines.xtts_weights import describe_weights
    from voxline.settings import Settings
    from voxline.text import split_text
    from voxline.voices.bank import VoiceBank

    settings = Settings.from_env(dict(env))
    if not settings.speakers_dir.is_absolute():  # the server runs in the repository root
        settings = dataclasses.replace(settings, speakers_dir=REPO_ROOT / settings.speakers_dir)
    name, _ = choose_engine(settings.engine, describe_weights(settings.xtts_dir))
    engine = load_engine(name, settings)
    bank = VoiceBank(engine, settings.speakers_dir, settings.cache_dir, settings.default_voice)
    bank.load()
    voice_name = speaker or bank.default
    voice = bank.get(voice_name) if voice_name else None
    if voice is None:
        raise ValueError(f"voice {voice_name!r} is not available in-process")
    if settings.warmup:
        engine.warmup(voice)  # as the server does before it reports ready
    return LocalEngine(engine, voice_name, voice, split_text)


def synthesis_params(payload: Mapping[str, object]):
    """The engine parameters a request body maps to: server defaults plus the body's fields."""
    from voxline.engines.base import SynthesisParams

    names = {f.name for f in dataclasses.fields(SynthesisParams)}
    return SynthesisParams(**{k: v for k, v in payload.items() if k in names})


@dataclass
class OverheadResult:
    """Both samples and the differences of their percentiles."""

    engine: str
    text_id: str
    voice: str
    inprocess_first_chunk_s: list[float] = field(default_factory=list)
    inprocess_total_s: list[float] = field(default_factory=list)
    http: list[RequestResult] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        inproc = describe(self.inprocess_first_chunk_s)
        http = describe([r.ttfa_s for r in self.http if r.ok and r.ttfa_s is not None])
        added = {
            key: http[key] - inproc[key]
            if isinstance(http[key], float) and isinstance(inproc[key], float)
            else None
            for key in ("p50", "p95", "p99", "max", "mean")
        }
        return {
            "engine": self.engine,
            "text_id": self.text_id,
            "voice": self.voice,
            "inprocess_first_chunk_s": inproc,
            "http_ttfa_s": http,
            "added_s": added,
            "http_errors": sum(1 for r in self.http if not r.ok),
            "raw_inprocess_first_chunk_s": self.inprocess_first_chunk_s,
            "raw_inprocess_total_s": self.inprocess_total_s,
            "raw_http": [r.to_json() for r in self.http],
        }


def measure_overhead(
    local: LocalEngine,
    target: Target,
    payload: dict[str, object],
    text_id: str,
    count: int,
    timeout_s: float,
    on_step: Callable[[], None] | None = None,
    warmup: int = 2,
    deadline: float | None = None,
) -> OverheadResult:
    """Alternate `count` HTTP requests with `count` in-process runs of the same request, after
    `warmup` unrecorded pairs (the first calls of a fresh model pay for lazy allocations).
    Stops early, keeping the pairs done, once time.monotonic() passes `deadline`."""
    language = str(payload.get("language", "en"))
    text = str(payload["text"]).strip()
    params = synthesis_params(payload)
    body = {**payload, "speaker": local.voice_name}
    out = OverheadResult(local.engine.name, text_id, local.voice_name)
    for i in range(-warmup, count):
        if deadline is not None and time.monotonic() > deadline:
            break
        result = RequestResult(
            index=i,
            workload="overhead",
            mode="closed",
            level=1,
            text_id=text_id,
            language=language,
            chars=len(text),
            forced_tokens=params.max_new_tokens,
        )
        stream_tts(target, body, result, timeout_s)
        start = time.perf_counter()
        chunks = local.stream(text, language, params)
        try:
            next(chunks)
            first = time.perf_counter() - start
            for _ in chunks:
                pass
        finally:
            chunks.close()
        if i < 0:
            continue
        out.http.append(result)
        out.inprocess_first_chunk_s.append(first)
        out.inprocess_total_s.append(time.perf_counter() - start)
        if on_step:
            on_step()
    return out

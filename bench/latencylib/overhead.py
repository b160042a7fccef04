"""Server overhead: the engine's first chunk called in-process vs. TTFA through gunicorn.

Both sides run the same text, voice and parameters, alternating one HTTP request (concurrency 1)
with one in-process call so that drift in machine load hits both alike. The difference of the
two distributions' percentiles is what HTTP, validation, the scheduler and the encoder add.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .client import RequestResult, Target, stream_tts
from .stats import describe

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_engine(env: Mapping[str, str]):
    """Construct, in this process, the engine a server started with `env` runs.

    The engine's own settings come from the same `VOXLINE_*` variables through the server's
    `Settings`, so both sides get identical chunk timing, checkpoint, device and precision.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from voxline.settings import Settings

    settings = Settings.from_env(dict(env))
    if settings.engine == "tone":
        from voxline.engines.tone import ToneEngine

        return ToneEngine(settings.tone_chunk_ms, settings.tone_first_chunk_ms)
    if settings.engine == "xtts":
        from voxline.engines.xtts_engine import XttsEngine

        if settings.xtts_dir is None:
            raise ValueError("the xtts engine needs VOXLINE_XTTS_DIR")
        return XttsEngine(settings.xtts_dir, settings.device, settings.deepspeed, settings.fp16)
    if settings.engine == "piper":
        from voxline.engines.piper_engine import PiperEngine

        return PiperEngine()
    raise ValueError(f"no in-process overhead measurement for engine {settings.engine!r}")


def synthesis_params(payload: dict[str, object]):
    """The engine parameters a request body maps to (fields the engine does not know dropped)."""
    from voxline.engines.base import SynthesisParams

    names = {f.name for f in dataclasses.fields(SynthesisParams)}
    return SynthesisParams(**{k: v for k, v in payload.items() if k in names})


@dataclass
class OverheadResult:
    """Paired samples and their percentile differences."""

    engine: str
    text_id: str
    voice: str
    inprocess_first_chunk_s: list[float] = field(default_factory=list)
    inprocess_total_s: list[float] = field(default_factory=list)
    http: list[RequestResult] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        inproc = describe(self.inprocess_first_chunk_s)
        ok = [r.ttfa_s for r in self.http if r.ok and r.ttfa_s is not None]
        http = describe(ok)
        added = {
            key: (http[key] - inproc[key])
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
            "raw_http_ttfa_s": [r.ttfa_s for r in self.http],
        }


def measure_overhead(
    engine,
    target: Target,
    payload: dict[str, object],
    text_id: str,
    voice_name: str,
    count: int,
    timeout_s: float,
    on_step: Callable[[], None] | None = None,
) -> OverheadResult:
    """Alternate `count` HTTP requests and `count` in-process streams of the same request."""
    voice = engine.builtin_voices()[voice_name]
    language = str(payload.get("language", "en"))
    text = str(payload["text"])
    params = synthesis_params(payload)
    body = {**payload, "speaker": voice_name}
    out = OverheadResult(engine.name, text_id, voice_name)
    for i in range(count):
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
        out.http.append(stream_tts(target, body, result, timeout_s))
        start = time.perf_counter()
        chunks = engine.stream(text, voice, language, params)
        try:
            next(chunks)
            out.inprocess_first_chunk_s.append(time.perf_counter() - start)
            for _ in chunks:
                pass
        finally:
            chunks.close()
        out.inprocess_total_s.append(time.perf_counter() - start)
        if on_step:
            on_step()
    return out

"""Sessions' door into the synthesis core: settings, one encoder per context, and segments
rendered through the same path as every HTTP request (`voxline.synthesis.render`).

Session error codes live here and only here: `session_error` maps the core's domain errors
(a refused request, a full scheduler, a failed synthesis) to the `error` messages clients get.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voxline.audio import AudioPipeline, resolve_output
from voxline.scheduler import Cancelled, QueueFull, SynthesisError
from voxline.synthesis.errors import NoAudio, NoSpeakableText, NotReady, RequestError
from voxline.synthesis.plan import output_spec, plan_request, resolve_language, resolve_voice
from voxline.synthesis.render import Source, open_source
from voxline.synthesis.request import (
    PARAM_RANGES,
    SynthesisRequest,
    flag_field,
    parse_params,
    string_field,
    text_type,
)
from voxline.synthesis.services import Services
from voxline.tape import RenderStalled

SESSION_FORMATS = ("pcm", "l16", "ulaw", "alaw", "opus")
DEFAULT_DELAY_MS = 400.0
FLAG_SETTINGS = ("normalize", "word_timestamps")
SETTING_NAMES = ("voice", "language", "format", "sample_rate", "max_buffer_delay_ms",
                 "text_type", *FLAG_SETTINGS, *PARAM_RANGES)


class SessionError(Exception):
    """A client mistake or a refusal inside a session: sent as an `error` message.
    `retry_after`: whole seconds after which a refused request would fit (as HTTP's
    Retry-After), when the server knows."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def session_error(exc: BaseException) -> SessionError | None:
    """The session form of a core error; None for an unexpected one."""
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, RequestError):
        return SessionError(exc.code, exc.message)
    if isinstance(exc, (QueueFull, NotReady)):
        return SessionError("busy", str(exc), exc.retry_after)
    if isinstance(exc, Cancelled):
        return SessionError("cancelled", "the segment was cancelled")
    if isinstance(exc, (SynthesisError, NoAudio, RenderStalled)):
        return SessionError("synthesis_failed", "synthesis of a segment failed")
    return None


@dataclass(frozen=True)
class SessionSettings:
    """Effective settings of a session: every field resolved (voice, language, rate)."""

    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


class Synthesis:
    """Synthesis for sessions over the server's shared services (engine, voices, scheduler)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def engine_rate(self) -> int:
        return self.services.engine.sample_rate

    def defaults(self) -> SessionSettings:
        """The settings a new session starts with."""
        return self.update(None, {})

    def update(self, current: SessionSettings | None,
               changes: Mapping[str, Any]) -> SessionSettings:
        """Apply `changes` to `current` (None: the defaults); raise SessionError if invalid."""
        unknown = sorted(k for k in changes if k not in SETTING_NAMES)
        if unknown:
            raise SessionError("unknown_parameter", f"unknown setting(s): {', '.join(unknown)}")
        merged = {**(current.values if current else {}), **changes}
        if "format" in changes and "sample_rate" not in changes:
            merged.pop("sample_rate", None)  # a new format starts at its own default rate
        try:
            return SessionSettings(self._resolve(merged))
        except RequestError as exc:
            raise SessionError(exc.code, exc.message) from exc

    def _resolve(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Validate like an HTTP request, field by field, and fill in every effective value."""
        svc = self.services
        engine = svc.engine
        name, _ = resolve_voice(svc, string_field(fields, "voice"))
        spec = output_spec(string_field(fields, "format") or "pcm",
                           fields.get("sample_rate"), engine, "pcm")
        if spec.format not in SESSION_FORMATS:
            raise SessionError("unsupported_format",
                               f"format must be one of {', '.join(SESSION_FORMATS)}")
        params = dataclasses.asdict(parse_params(fields, False, svc.defaults))
        delay = fields.get("max_buffer_delay_ms", DEFAULT_DELAY_MS)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not (
                0 <= delay <= 10000):
            raise SessionError("invalid_parameter", "max_buffer_delay_ms must be 0..10000")
        flags = {k: flag_field(fields, k, False) is not False for k in FLAG_SETTINGS}
        return {
            "voice": name,
            "language": resolve_language(string_field(fields, "language"), engine),
            "format": spec.format,
            "sample_rate": spec.sample_rate,
            "max_buffer_delay_ms": float(delay),
            "text_type": text_type(string_field(fields, "text_type")),
            **flags,
            **{k: params[k] for k in PARAM_RANGES},
        }

    def pipeline(self, settings: SessionSettings) -> AudioPipeline:
        """A fresh encoder for one context, in the session's format."""
        spec = resolve_output(settings.format, settings.sample_rate, self.engine_rate, "pcm")
        return AudioPipeline(spec, self.engine_rate, level=self.services.level)

    def open_segment(self, request_id: str, text: str, settings: SessionSettings,
                     encoder: AudioPipeline, cancelled: Callable[[], bool]) -> Source | None:
        """Render one segment into the context's encoder; its errors (a full scheduler
        included) reach the reader. None for a segment with nothing to say (LLMs send "…"
        on their own: skipped, not an error). Raises SessionError for a segment that cannot
        be planned."""
        svc = self.services
        values = settings.values
        req = SynthesisRequest(
            text=text, speaker=values["voice"], language=values["language"],
            format=values["format"], sample_rate=values["sample_rate"],
            params=parse_params(values, False, svc.defaults), cache=False,
            text_type=values["text_type"], normalize=values["normalize"],
            timestamps=values["word_timestamps"],
        )
        try:
            plan = plan_request(svc, req, "pcm")
        except NoSpeakableText:
            return None
        except (RequestError, NotReady) as exc:
            raise session_error(exc) from exc
        return open_source(svc, plan, request_id, encoder=encoder, cancelled=cancelled)

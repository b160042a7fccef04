"""The one door from realtime sessions into the server's synthesis path.

Sessions never touch the scheduler, engine or request parsing directly: they validate settings,
build an encoder and open one segment at a time through this module, so the synthesis path can
change behind it (today `parse_tts_request` + `streaming.start_job`, like `/tts_stream`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voxline.audio import AudioFormatError, AudioPipeline, resolve_output
from voxline.server.errors import ApiError
from voxline.server.params import PARAM_RANGES, parse_tts_request
from voxline.server.services import Services
from voxline.server.streaming import resolve_language, resolve_voice, start_job

SESSION_FORMATS = ("pcm", "l16", "ulaw", "alaw", "opus")
DEFAULT_DELAY_MS = 400.0
SETTING_NAMES = ("voice", "language", "format", "sample_rate", "max_buffer_delay_ms", *PARAM_RANGES)


class SessionError(Exception):
    """A client mistake or a refusal inside a session: sent as an `error` message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SegmentAudio(Protocol):
    """One segment's synthesis: float32 chunks at the engine rate; `close` releases it."""

    chunks: Iterator[np.ndarray]

    def close(self) -> None: ...


@dataclass(frozen=True)
class SessionSettings:
    """Effective settings of a session: every field resolved (voice, language, rate)."""

    values: Mapping[str, Any]

    @property
    def format(self) -> str:
        return self.values["format"]

    @property
    def sample_rate(self) -> int:
        return self.values["sample_rate"]

    @property
    def language(self) -> str:
        return self.values["language"]

    @property
    def max_buffer_delay_ms(self) -> float:
        return self.values["max_buffer_delay_ms"]

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

    def update(
        self, current: SessionSettings | None, changes: Mapping[str, Any]
    ) -> SessionSettings:
        """Apply `changes` to `current` (None: the defaults); raise SessionError if invalid."""
        unknown = sorted(k for k in changes if k not in SETTING_NAMES)
        if unknown:
            raise SessionError("unknown_parameter", f"unknown setting(s): {', '.join(unknown)}")
        merged = {**(current.values if current else {}), **changes}
        if "format" in changes and "sample_rate" not in changes:
            merged.pop("sample_rate", None)  # a new format starts at its own default rate
        delay = merged.pop("max_buffer_delay_ms", DEFAULT_DELAY_MS)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not 0 <= delay <= 10000
        ):
            raise SessionError("invalid_parameter", "max_buffer_delay_ms must be 0..10000")
        try:
            values = self._resolve(merged)
        except ApiError as exc:
            raise SessionError(exc.code, exc.message) from exc
        values["max_buffer_delay_ms"] = float(delay)
        return SessionSettings(values)

    def _resolve(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Validate like an HTTP request and fill in every effective value."""
        self.services.require_ready()
        data = {k: v for k, v in fields.items() if k in PARAM_RANGES or k == "sample_rate"}
        data.update(
            text="x",
            speaker=fields.get("voice"),
            language=fields.get("language"),
            format=fields.get("format") or "pcm",
        )
        req = self._parse(data)
        if req.format not in SESSION_FORMATS:
            raise ApiError(
                400, "unsupported_format", f"format must be one of {', '.join(SESSION_FORMATS)}"
            )
        engine = self.services.engine
        language = resolve_language(req.language, engine.languages)
        voice, _ = resolve_voice(self.services, req.speaker)
        try:
            spec = resolve_output(req.format, req.sample_rate, engine.sample_rate, "pcm")
        except AudioFormatError as exc:
            raise ApiError(400, "unsupported_format", str(exc)) from exc
        params = dataclasses.asdict(req.params)
        return {
            "voice": voice,
            "language": language,
            "format": spec.format,
            "sample_rate": spec.sample_rate,
            **{name: params[name] for name in PARAM_RANGES},
        }

    def _parse(self, data: dict[str, Any]):
        svc = self.services
        return parse_tts_request(
            data, from_query=False, max_chars=svc.settings.max_chars, defaults=svc.defaults
        )

    def pipeline(self, settings: SessionSettings) -> AudioPipeline:
        """A fresh encoder for one context, in the session's format."""
        spec = resolve_output(settings.format, settings.sample_rate, self.engine_rate, "pcm")
        return AudioPipeline(spec, self.engine_rate, level=self.services.level)

    def open_segment(
        self, request_id: str, text: str, settings: SessionSettings, cancelled: Callable[[], bool]
    ) -> SegmentAudio:
        """Submit one segment to the shared scheduler and wait for its admission.

        Raises SessionError: `busy` when the scheduler has no room, else the request's error.
        """
        values = settings.values
        data = {k: v for k, v in values.items() if k in PARAM_RANGES and v is not None}
        data.update(
            text=text,
            speaker=values["voice"],
            language=values["language"],
            format=values["format"],
            sample_rate=values["sample_rate"],
        )
        try:
            return start_job(self.services, self._parse(data), request_id, cancelled, "pcm")
        except ApiError as exc:
            code = "busy" if exc.status == 503 else exc.code
            raise SessionError(code, exc.message) from exc

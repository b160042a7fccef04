"""OpenAI-compatible speech: POST /v1/audio/speech, GET /v1/audio/voices and /v1/audio/models.

Clients built for OpenAI (the `openai` package, Pipecat's OpenAITTSService, LiveKit's OpenAI
plugin, Open WebUI) work unchanged with `base_url=http://HOST:8020/v1`. OpenAI's voice names are
accepted as aliases (`VOXLINE_VOICE_ALIASES`), since such clients validate them; errors come in
OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from voxline.server.auth import SYNTHESIS, require_key
from voxline.server.bodies import read_json_object
from voxline.server.body import Exchange, respond
from voxline.server.errors import ApiError, bad_request, to_api_error
from voxline.server.flaskapp import app_services
from voxline.server.framing import SseEvents, usage_for
from voxline.synthesis.errors import RequestError
from voxline.synthesis.plan import plan_request
from voxline.synthesis.request import KNOWN_FIELDS, SynthesisRequest, parse_request
from voxline.synthesis.services import Services

logger = logging.getLogger(__name__)
bp = Blueprint("openai", __name__, url_prefix="/v1/audio")

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
# response_format -> (Voxline format, OpenAI's rate). OpenAI speaks at 24 kHz; Ogg Opus is 48k.
FORMATS = {"mp3": ("mp3", 24000), "opus": ("opus", 48000), "aac": ("aac", 24000),
           "flac": ("flac", 24000), "wav": ("wav", 24000), "pcm": ("pcm", 24000)}
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voxline")
OPENAI_FIELDS = ("model", "input", "voice", "response_format", "speed", "instructions",
                 "stream_format")
# Voxline's own fields are accepted too (the openai package sends them via `extra_body`).
EXTRA_FIELDS = KNOWN_FIELDS - {"text", "speaker", "format", "speed"}


def resolve_voice_name(requested: str, voices: list[str], aliases: Mapping[str, str],
                       default: str | None) -> str:
    """A Voxline voice for an OpenAI `voice`: a voice by its name, else an alias (mapped, or the
    default voice), else a 400."""
    if requested in voices:
        return requested
    alias = requested.lower()
    if alias in aliases or alias in OPENAI_VOICES:
        target = aliases.get(alias)
        if target in voices:
            return target
        if default is not None:
            return default
    raise ApiError(400, "voice_not_found",
                   f"voice {requested!r} not found; GET /v1/audio/voices lists the voices",
                   param="voice")


def to_tts_request(body: Mapping[str, Any], services: Services) -> SynthesisRequest:
    """Translate an OpenAI speech request into Voxline's, validating OpenAI's fields."""
    unknown = sorted(k for k in body if k not in OPENAI_FIELDS and k not in EXTRA_FIELDS
                     and not k.startswith("_"))
    if unknown:
        raise bad_request("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}",
                          param=unknown[0])
    for name in ("model", "input", "instructions"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request("invalid_type", f"{name} must be a string", param=name)
    text = body.get("input")
    if not text or not text.strip():
        raise bad_request("missing_input", "input is required and must not be empty",
                          param="input")
    if body.get("stream_format", "audio") not in ("audio", "sse"):
        raise bad_request("unsupported_stream_format", "stream_format must be 'audio' or 'sse'",
                          param="stream_format")
    fmt = body.get("response_format", "mp3")
    if fmt not in FORMATS:
        raise bad_request("unsupported_format", f"response_format must be one of "
                          f"{', '.join(FORMATS)}", param="response_format")
    voice = body.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise bad_request("missing_voice", "voice is required (a name, or {\"id\": name})",
                          param="voice")
    bank = services.voices
    name = resolve_voice_name(voice, bank.names(), services.settings.alias_map(), bank.default)
    fmt_name, rate = FORMATS[fmt]
    data = {k: v for k, v in body.items() if k in EXTRA_FIELDS}
    data.update(text=text, speaker=name, format=fmt_name)
    data.setdefault("sample_rate", rate)
    if body.get("speed") is not None:
        data["speed"] = body["speed"]
    try:
        return parse_request(data, from_query=False, max_chars=services.settings.max_chars,
                             defaults=services.defaults)
    except RequestError as exc:
        if exc.param == "text":  # OpenAI calls it input
            exc.param, exc.message = "input", exc.message.replace("text", "input", 1)
        raise


def _ready_services() -> Services:
    svc = app_services()
    svc.require_ready()
    return svc


@bp.post("/speech")
@require_key(SYNTHESIS)
def speech():
    if not request.is_json:
        raise bad_request("invalid_json", "send a JSON object with Content-Type: "
                                          "application/json")
    body = read_json_object(request)
    svc = _ready_services()
    if body.get("instructions"):
        logger.info("instructions are not supported by this engine; ignored")
    req = to_tts_request(body, svc)
    framing = None
    if body.get("stream_format") == "sse":
        framing = SseEvents(usage_for(req.text), timestamps=req.timestamps)
    elif req.timestamps:
        raise bad_request("invalid_parameter", "timestamps need stream_format 'sse'",
                          param="timestamps")
    return respond(svc, plan_request(svc, req, "mp3"), Exchange.current("/v1/audio/speech"),
                   framing)


@bp.get("/voices")
@require_key(SYNTHESIS)
def voices():
    """Voices, then OpenAI names with the voice each speaks with (Open WebUI reads `voices`)."""
    svc = _ready_services()
    names = svc.voices.names()
    aliases = svc.settings.alias_map()
    listed = [{"id": n, "name": n} for n in names]
    for alias in dict.fromkeys([*OPENAI_VOICES, *aliases]):
        if alias in names:
            continue
        target = aliases.get(alias)
        target = target if target in names else svc.voices.default
        listed.append({"id": alias, "name": alias, "alias_of": target})
    return jsonify({"voices": listed, "default": svc.voices.default})


@bp.get("/models")
@require_key(SYNTHESIS)
def models():
    """Model ids clients may send; every one is served by the loaded engine."""
    return jsonify({"models": [{"id": m} for m in MODELS]})


def openai_error(status: int, code: str, message: str, param: str | None = None):
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return jsonify({"error": {"message": message, "type": kind, "param": param,
                              "code": code}}), status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return openai_error(exc.code or 500, code, exc.description or code)


@bp.errorhandler(Exception)
def _any_error(exc: Exception):
    """OpenAI's error shape for every failure of these routes."""
    error = to_api_error(exc)
    if error is None:
        logger.exception("unhandled error")
        return openai_error(500, "internal_error", "internal server error")
    logger.info("%s %s: %s", error.status, error.code, error.message)
    body, status = openai_error(error.status, error.code, error.message, error.param)
    return body, status, error.headers

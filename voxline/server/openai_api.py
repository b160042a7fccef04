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

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from voxline.server.auth import SYNTHESIS, require_key
from voxline.server.delivery import plan_request, stream_response
from voxline.server.errors import ApiError, bad_request
from voxline.server.params import KNOWN_FIELDS, TtsRequest, parse_tts_request
from voxline.server.services import Services
from voxline.server.sse import as_sse, usage_for

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


def to_tts_request(body: Mapping[str, Any], services: Services) -> TtsRequest:
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
        return parse_tts_request(data, from_query=False, max_chars=services.settings.max_chars,
                                 defaults=services.defaults)
    except ApiError as exc:
        if exc.param == "text":  # OpenAI calls it input
            exc.param, exc.message = "input", exc.message.replace("text", "input", 1)
        raise


def _services() -> Services:
    return current_app.extensions["voxline"]


def _ready_services() -> Services:
    svc = _services()
    svc.require_ready()
    return svc


@bp.post("/speech")
@require_key(SYNTHESIS)
def speech():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "send a JSON object with Content-Type: "
                                          "application/json")
    svc = _ready_services()
    if body.get("instructions"):
        logger.info("instructions are not supported by this engine; ignored")
    req = to_tts_request(body, svc)
    response = stream_response(svc, plan_request(svc, req, "mp3"), route="/v1/audio/speech")
    if body.get("stream_format") == "sse":
        return as_sse(response, usage_for(req.text))
    return response


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


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    logger.info("%s %s: %s", exc.status, exc.code, exc.message)
    body, status = openai_error(exc.status, exc.code, exc.message, exc.param)
    return body, status, exc.headers


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return openai_error(exc.code or 500, code, exc.description or code)


@bp.errorhandler(Exception)
def _internal_error(exc: Exception):
    logger.exception("unhandled error")
    return openai_error(500, "internal_error", "internal server error")

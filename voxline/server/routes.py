"""Voxline's own HTTP routes: JSON in, audio out, `{"error", "message"}` errors.

Each synthesis route only parses its request; the core's `plan_request` and the shared
`respond` do the rest (voxline/synthesis/plan.py, render.py; voxline/server/body.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from voxline.server.auth import ADMIN, SYNTHESIS, require_key
from voxline.server.bodies import read_json_object
from voxline.server.body import Exchange, respond
from voxline.server.coqui_compat import coqui_tts_stream, is_coqui_request
from voxline.server.errors import ApiError, bad_request, to_api_error
from voxline.server.flaskapp import app_services
from voxline.server.framing import TimedJson
from voxline.synthesis.errors import NotReady
from voxline.synthesis.plan import plan_request, resolve_voice
from voxline.synthesis.request import parse_request

logger = logging.getLogger(__name__)
bp = Blueprint("voxline", __name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@bp.before_app_request
def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex


@bp.after_app_request
def echo_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    return response


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify({"error": code, "message": exc.description}), exc.code


@bp.app_errorhandler(Exception)
def any_error(exc: Exception):
    """Voxline's error shape for every route outside other API families."""
    error = to_api_error(exc)
    if error is None:
        logger.exception("unhandled error")
        error = ApiError(500, "internal_error", "internal server error")
    else:
        logger.info("%s %s: %s", error.status, error.code, error.message)
    return jsonify(error.body()), error.status, error.headers


def read_json() -> dict[str, Any]:
    """The request's JSON object body, checked as hostile input (any route may use it)."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "send a JSON body with Content-Type: application/json")
    return read_json_object(request)


def _request_data(allow_query: bool) -> tuple[dict, bool]:
    if request.method == "GET":
        if not allow_query:
            raise ApiError(405, "method_not_allowed", "use POST with a JSON body")
        return _strict_query(request.environ.get("QUERY_STRING", "")), True
    return read_json(), False


def _strict_query(raw: str) -> dict[str, str]:
    """Decode the query string as strict UTF-8: werkzeug keeps bad escapes as literal text."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise bad_request("invalid_encoding", "the query string is not valid UTF-8") from exc
    data: dict[str, str] = {}
    for key, value in pairs:
        data.setdefault(key, value)
    return data


def _voxline_request(data: Mapping[str, Any], from_query: bool):
    svc = app_services()
    return parse_request(data, from_query=from_query, max_chars=svc.settings.max_chars,
                         defaults=svc.defaults)


@bp.route("/tts_stream", methods=["GET", "POST"])
@require_key(SYNTHESIS)
def tts_stream():
    data, from_query = _request_data(allow_query=True)
    if not from_query and is_coqui_request(data):
        return coqui_tts_stream(data)
    req = _voxline_request(data, from_query)
    if req.timestamps:
        raise bad_request("invalid_parameter", "timestamps come with POST /tts, realtime "
                          "sessions and /v1/audio/speech SSE; not with an audio stream",
                          param="timestamps")
    svc = app_services()
    return respond(svc, plan_request(svc, req, "l16"), Exchange.current("/tts_stream"))


@bp.route("/tts", methods=["POST"])
@require_key(SYNTHESIS)
def tts():
    req = _voxline_request(*_request_data(allow_query=False))
    svc = app_services()
    plan = plan_request(svc, req, "wav", whole=True)
    framing = TimedJson(plan.spec) if req.timestamps else None
    return respond(svc, plan, Exchange.current("/tts"), framing)


@bp.get("/speakers")
@require_key(SYNTHESIS)
def speakers():
    svc = app_services()
    if svc.voices is None:
        raise NotReady(svc.state)
    return jsonify({"speakers": svc.voices.names(), "default": svc.voices.default,
                    "failed": svc.voices.report.failed})


@bp.get("/languages")
def languages():
    svc = app_services()
    if svc.engine is None:
        raise NotReady(svc.state)
    unavailable = dict(svc.engine.unavailable_languages)
    return jsonify({"languages": list(svc.engine.languages), "unavailable": unavailable})


@bp.get("/health")
def health():
    return jsonify(app_services().health())


@bp.get("/ready")
def ready():
    svc = app_services()
    if not svc.ready or svc.draining:
        status = "draining" if svc.draining else svc.state
        return jsonify({"ready": False, "status": status, "error": svc.error}), 503
    return jsonify({"ready": True, "engine": svc.engine_name})


@bp.delete("/v1/cache")
@require_key(ADMIN)
def purge_cache():
    """Drop cached renders: all of them, or one voice's (`?voice=NAME`)."""
    svc = app_services()
    svc.require_ready()
    voice = request.args.get("voice")
    group = None
    if voice is not None:
        name, _ = resolve_voice(svc, voice)
        group = svc.voices.digest(name)
    dropped = svc.phrases.drop_group(group) if group or voice is None else 0
    logger.info("phrase cache purged (%s): %d renders", voice or "all voices", dropped)
    return jsonify({"purged": dropped, "voice": voice})

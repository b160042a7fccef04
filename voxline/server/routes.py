"""HTTP routes: JSON in, audio out, JSON errors."""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from voxline.audio import encode_whole
from voxline.server.auth import SYNTHESIS, require_key
from voxline.server.coqui_compat import coqui_tts_stream, is_coqui_request
from voxline.server.delivery import plan_request, stream_response
from voxline.server.errors import ApiError, bad_request, not_ready
from voxline.server.params import parse_tts_request
from voxline.server.services import Services
from voxline.server.streaming import client_gone_probe, start_job

logger = logging.getLogger(__name__)
bp = Blueprint("voxline", __name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def services() -> Services:
    return current_app.extensions["voxline"]


@bp.before_app_request
def assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex


@bp.after_app_request
def echo_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    return response


@bp.app_errorhandler(ApiError)
def api_error(exc: ApiError):
    logger.info("%s %s: %s", exc.status, exc.code, exc.message)
    return jsonify(exc.body()), exc.status, exc.headers


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify({"error": code, "message": exc.description}), exc.code


@bp.app_errorhandler(Exception)
def internal_error(exc: Exception):
    logger.exception("unhandled error")
    return jsonify({"error": "internal_error", "message": "internal server error"}), 500


def _request_data(allow_query: bool) -> tuple[dict, bool]:
    if request.method == "GET":
        if not allow_query:
            raise ApiError(405, "method_not_allowed", "use POST with a JSON body")
        return _strict_query(request.environ.get("QUERY_STRING", "")), True
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send a JSON body with "
                                                      "Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    return data, False


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


def _parse(allow_query: bool):
    data, from_query = _request_data(allow_query)
    svc = services()
    return parse_tts_request(data, from_query=from_query, max_chars=svc.settings.max_chars,
                             defaults=svc.defaults)


def _audio_headers(job) -> dict[str, str]:
    return {
        "X-Sample-Rate": str(job.spec.sample_rate),
        "X-Voxline-Voice": job.voice_name,
        "X-Voxline-Engine": services().engine_name,
        "Cache-Control": "no-cache",
    }


@bp.route("/tts_stream", methods=["GET", "POST"])
@require_key(SYNTHESIS)
def tts_stream():
    data, from_query = _request_data(allow_query=True)
    if not from_query and is_coqui_request(data):
        return coqui_tts_stream(data)
    svc = services()
    req = parse_tts_request(data, from_query=from_query, max_chars=svc.settings.max_chars,
                            defaults=svc.defaults)
    return stream_response(svc, plan_request(svc, req, "l16"), route="/tts_stream")


@bp.route("/tts", methods=["POST"])
@require_key(SYNTHESIS)
def tts():
    req = _parse(allow_query=False)
    svc = services()
    job = start_job(svc, req, g.request_id, client_gone_probe(request.environ), "wav")
    try:
        audio = encode_whole(job.spec, svc.engine.sample_rate, job.chunks, level=svc.level)
    except Exception as exc:
        logger.exception("synthesis failed")
        raise ApiError(500, "synthesis_failed", "synthesis failed; see the server log") from exc
    finally:
        job.close()
    return Response(audio, headers=_audio_headers(job), content_type=job.spec.content_type)


@bp.get("/speakers")
@require_key(SYNTHESIS)
def speakers():
    svc = services()
    if svc.voices is None:
        raise not_ready(svc.state)
    return jsonify({"speakers": svc.voices.names(), "default": svc.voices.default,
                    "failed": svc.voices.report.failed})


@bp.get("/languages")
def languages():
    svc = services()
    if svc.engine is None:
        raise not_ready(svc.state)
    return jsonify({"languages": list(svc.engine.languages)})


@bp.get("/health")
def health():
    return jsonify(services().health())


@bp.get("/ready")
def ready():
    svc = services()
    if not svc.ready or svc.draining:
        status = "draining" if svc.draining else svc.state
        return jsonify({"ready": False, "status": status, "error": svc.error}), 503
    return jsonify({"ready": True, "engine": svc.engine_name})

"""The text front end over HTTP: preview what will be said, and manage pronunciation lexicons.

- `POST /v1/text/normalize` {text, language?, text_type?, normalize?}: `{"spoken", "spans",
  "pieces"}` without synthesising (prompt authors check what will be said; tests use it).
- `PUT /v1/lexicons/NAME` (body: a W3C PLS document), `GET /v1/lexicons[/NAME]`,
  `DELETE /v1/lexicons/NAME`: admin key, like voice management.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from voxline.server.auth import ADMIN, SYNTHESIS, require_key
from voxline.server.bodies import read_json_object
from voxline.server.errors import ApiError
from voxline.server.flaskapp import app_services
from voxline.synthesis.errors import InvalidRequest, TooLarge
from voxline.synthesis.plan import resolve_language
from voxline.synthesis.request import flag_field, string_field, text_type

bp = Blueprint("text", __name__)
PREVIEW_FIELDS = frozenset({"text", "language", "text_type", "normalize", "voice", "speaker"})


@bp.post("/v1/text/normalize")
@require_key(SYNTHESIS)
def preview():
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "send a JSON body with Content-Type: application/json")
    body = read_json_object(request)
    unknown = sorted(k for k in body if k not in PREVIEW_FIELDS)
    if unknown:
        raise InvalidRequest("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}",
                             param=unknown[0])
    svc = app_services()
    svc.require_ready()
    text = string_field(body, "text")
    if not text or not text.strip():
        raise InvalidRequest("missing_text", "text is required and must not be empty", "text")
    if len(text) > svc.settings.max_chars:
        raise TooLarge("text_too_long", f"text has {len(text)} characters; the limit is "
                       f"{svc.settings.max_chars}", "text")
    language = resolve_language(string_field(body, "language"), svc.engine)
    spoken = svc.frontend.process(
        text, language=language, text_type=text_type(string_field(body, "text_type")),
        normalize=flag_field(body, "normalize", False) is not False,
        phonemes=svc.engine.takes_phonemes)
    return jsonify({"language": language, **spoken.describe()})


@bp.get("/v1/lexicons")
@require_key(ADMIN)
def list_lexicons():
    lexicons = app_services().frontend.lexicons
    return jsonify({"lexicons": [_describe(lexicons.get(n)) for n in lexicons.names()]})


@bp.get("/v1/lexicons/<name>")
@require_key(ADMIN)
def get_lexicon(name: str):
    lexicon = app_services().frontend.lexicons.get(name)
    return Response(lexicon.document, content_type="application/pls+xml")


@bp.put("/v1/lexicons/<name>")
@require_key(ADMIN)
def put_lexicon(name: str):
    store = app_services().frontend.lexicons
    if request.content_length is not None and request.content_length > store.max_bytes:
        raise TooLarge("too_large", f"a lexicon is at most {store.max_bytes} bytes")
    request.max_content_length = store.max_bytes
    lexicon = store.put(name, request.get_data(cache=False))
    return jsonify(_describe(lexicon)), 201


@bp.delete("/v1/lexicons/<name>")
@require_key(ADMIN)
def delete_lexicon(name: str):
    app_services().frontend.lexicons.delete(name)
    return jsonify({"deleted": name})


def _describe(lexicon) -> dict:
    return {"name": lexicon.name, "language": lexicon.language,
            "lexemes": len(lexicon.lexemes)}

"""Voice management for admins: /v1/voices (create from clips, list, show, delete).

The work happens in `voxline.voices.manage.VoiceManager`; these routes check the admin key
and read the multipart upload (its errors map to HTTP in `errors.to_api_error`).
"""

from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from voxline.server.auth import ADMIN, require_key
from voxline.server.flaskapp import app_services
from voxline.synthesis.services import Services
from voxline.voices.manage import VoiceManager
from voxline.voices.upload import UploadError

logger = logging.getLogger(__name__)
bp = Blueprint("voice_admin", __name__, url_prefix="/v1/voices")


def _context() -> tuple[Services, VoiceManager]:
    svc = app_services()
    svc.require_ready()
    return svc, svc.voice_manager


@bp.post("")
@require_key(ADMIN)
def create():
    svc, manager = _context()
    limit = int(svc.settings.upload_max_mb * 1e6)
    too_large = UploadError("too_large",
                            f"the upload is larger than {svc.settings.upload_max_mb:g} MB")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    request.max_content_length = limit
    try:
        name = request.form.get("name", "")
        uploads = [(f.filename or "", f.stream) for _, f in request.files.items(multi=True)]
    except RequestEntityTooLarge:
        raise too_large from None

    def compute(clips):
        return svc.scheduler.run(g.request_id, lambda: svc.engine.compute_conditioning(clips))

    result = manager.create(svc.voices, name, uploads, compute)
    logger.info("voice %s created from %d clip(s) in %.2f s", name, len(uploads),
                result["ready_s"])
    return jsonify(result), 201


@bp.get("")
@require_key(ADMIN)
def list_voices():
    svc, manager = _context()
    return jsonify({"voices": [manager.describe(svc.voices, n) for n in svc.voices.names()],
                    "failed": svc.voices.report.failed})


@bp.get("/<path:name>")
@require_key(ADMIN)
def show(name: str):
    svc, manager = _context()
    return jsonify(manager.describe(svc.voices, name))


@bp.delete("/<path:name>")
@require_key(ADMIN)
def delete(name: str):
    svc, manager = _context()
    digest = manager.delete(svc.voices, name)
    dropped = svc.phrases.drop_group(digest) if digest else 0
    logger.info("voice %s deleted (%d cached renders dropped)", name, dropped)
    return jsonify({"deleted": name, "cached_renders_dropped": dropped})

"""The browser playground at `GET /`: one static page and its script, shipped in the package."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory

bp = Blueprint(
    "playground", __name__, static_folder="static/playground", static_url_path="/playground"
)


@bp.get("/")
def index() -> Response:
    """The playground page (plain HTML + JS over the session API; no build step, no CDN)."""
    response = send_from_directory(bp.static_folder, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response

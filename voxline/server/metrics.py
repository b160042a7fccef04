"""Prometheus metrics at /metrics (instruments in `voxline.synthesis.metrics`).

Each app has its own registry (tests build many apps in one process); values that already live
elsewhere (queue depth, voices, cache size) are read when scraped.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from voxline.synthesis.services import Services


def init_app(app: Flask, services: Services) -> None:
    """Count every response, start each request's first-audio clock, and serve /metrics."""
    metrics = services.metrics
    bp = Blueprint("metrics", __name__)

    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()  # time to first audio counts from here

    @app.after_request
    def _count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(rule, str(response.status_code)).inc()
        return response

    @bp.get("/metrics")
    def scrape() -> Response:
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    app.register_blueprint(bp)

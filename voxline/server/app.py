"""The application factory: gunicorn runs `app:create_app()`; tests pass a config."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from voxline.settings import Settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may hold `settings` (Settings or a mapping of fields), an
    `engine` instance to serve instead of loading one, and `background` (load in a thread,
    default True)."""
    from voxline.server import logctx, metrics, realtime_ws
    from voxline.server.auth import KeyRing
    from voxline.server.coqui_compat import bp as coqui_bp
    from voxline.server.flaskapp import VoxlineApp
    from voxline.server.openai_api import bp as openai_bp
    from voxline.server.playground import bp as playground_bp
    from voxline.server.routes import bp
    from voxline.server.text_routes import bp as text_bp
    from voxline.server.voice_admin import bp as voice_admin_bp
    from voxline.synthesis.services import Services

    config = dict(config or {})
    settings = config.get("settings")
    if settings is None:
        settings = Settings.from_env()
    elif not isinstance(settings, Settings):
        settings = Settings.from_mapping(dict(settings))
    _configure_logging()
    app = VoxlineApp("voxline")
    app.json.sort_keys = False
    services = app.services = Services(settings, engine=config.get("engine"))
    app.keys = KeyRing(settings.api_keys, settings.admin_keys)
    for line in app.keys.describe():
        logging.getLogger(__name__).info("auth: %s", line)
    app.register_blueprint(bp)
    logctx.init_app(app)  # after `bp`, whose first hook assigns g.request_id
    metrics.init_app(app, services)
    app.register_blueprint(voice_admin_bp)
    app.register_blueprint(text_bp)
    app.register_blueprint(openai_bp)
    app.register_blueprint(coqui_bp)
    realtime_ws.init_app(app, services)
    app.register_blueprint(playground_bp)
    services.start(background=config.get("background", True))
    return app


def _configure_logging() -> None:
    from voxline.server.logctx import LOG_FORMAT, install_filter

    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    install_filter(root)

"""The one way request code finds the app's services (made by the factory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from voxline.server.services import Services

KEY = "voxline"


def current() -> Services:
    """The services of the app serving this request."""
    return current_app.extensions[KEY]

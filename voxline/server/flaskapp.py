"""Voxline's Flask application: the services and keys every HTTP and websocket route uses,
as typed attributes of the app (no string-keyed lookups)."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from voxline.server.auth import KeyRing
from voxline.synthesis.services import Services


class VoxlineApp(Flask):
    """A Flask app that carries the synthesis services and the key ring."""

    services: Services
    keys: KeyRing


def app_services() -> Services:
    """The synthesis services of the app serving this request."""
    return cast(VoxlineApp, current_app).services


def app_keys() -> KeyRing:
    return cast(VoxlineApp, current_app).keys

"""Entry point: `gunicorn -c gunicorn.conf.py 'app:create_app()'`."""

from voxline.server.app import create_app

__all__ = ["create_app"]

"""The request id in every log line of a request, also while its response streams.

Flask pops the request context before a streamed body is iterated, so `g` is gone by then; a
context variable set for the request (and again by the streamed body itself) is not. A
logging.Filter on the handlers copies it into each record as `request_id`.
"""

from __future__ import annotations

import logging

from flask import Flask, g

from voxline.request_context import NO_REQUEST, REQUEST_ID

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s rid=%(request_id)s"


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id`: the id of the request being served, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def install_filter(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (default: root) that lacks it."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


def init_app(app: Flask) -> None:
    """Track the request id of each request (register after `g.request_id` is assigned)."""

    @app.before_request
    def _set_request_id() -> None:
        REQUEST_ID.set(g.get("request_id", NO_REQUEST))

    @app.teardown_request
    def _clear_request_id(_exc: BaseException | None) -> None:
        REQUEST_ID.set(NO_REQUEST)

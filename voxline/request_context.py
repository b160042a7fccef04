"""The id of the request being worked on, for log lines (no Flask: the scheduler sets it too)."""

from __future__ import annotations

from contextvars import ContextVar

NO_REQUEST = "-"
REQUEST_ID: ContextVar[str] = ContextVar("voxline_request_id", default=NO_REQUEST)

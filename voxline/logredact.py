"""Secrets never reach the logs: API keys in query strings and credential headers are redacted.

Browsers can authenticate a websocket only with `?api_key=`, so keys arrive in request lines.
`RedactingLogger` is gunicorn's logger with every access-log atom redacted (request line,
query, raw URI, headers) and a filter on its handlers for what else gunicorn logs (an error
while handling `/path?api_key=...`). `install_filter` puts the same filter on the root logger's
handlers, where the app's own loggers write.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "REDACTED"
# `api_key=VALUE` in a query (also percent-encoded as api%5Fkey), up to the next separator.
_QUERY_KEY = re.compile(r"(?i)\b(api(?:_|%5f)key=)[^&\s\"'#]*")
# A credential after an auth scheme, wherever a header value was printed (token68 characters;
# keys have at least 8, so prose such as "Bearer <key>" stays).
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")
# Request headers (and their environ names) whose whole value is a secret.
SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "cookie")
_SECRET_ATOMS = frozenset(
    [f"{{{name}}}i" for name in SECRET_HEADERS]
    + [f"{{http_{name.replace('-', '_')}}}e" for name in SECRET_HEADERS]
)


def redact(text: str) -> str:
    """`text` with every `api_key=` value and every bearer/basic credential replaced."""
    text = _QUERY_KEY.sub(rf"\g<1>{REDACTED}", text)
    return _SCHEME_CREDENTIAL.sub(rf"\g<1>\g<2>{REDACTED}", text)


def redact_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """Gunicorn's access-log atoms with secret headers hidden and every string redacted."""
    return {
        name: REDACTED
        if name in _SECRET_ATOMS and value
        else redact(value)
        if isinstance(value, str)
        else value
        for name, value in atoms.items()
    }


class RedactingFilter(logging.Filter):
    """Rewrites each record's formatted message through `redact` (args folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_filter(logger: logging.Logger | None = None) -> None:
    """Put a `RedactingFilter` on every handler of `logger` (default: root) that lacks one."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class RedactingLogger(Logger):
    """Gunicorn's logger (set as `logger_class`) that never writes a key or credential."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install_filter(self.error_log)
        install_filter(self.access_log)

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict[str, Any]:
        return redact_atoms(super().atoms(resp, req, environ, request_time))

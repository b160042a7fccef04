"""Bearer keys: API keys may synthesise; admin keys may also manage voices.

No API keys configured: synthesis is open. No admin keys: voice management is off. Keys are
compared in constant time (their SHA-256 digests, so lengths leak nothing either), against every
configured key without stopping at the first match.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import current_app, request

from voxline.server.errors import ApiError

logger = logging.getLogger(__name__)
SYNTHESIS = "synthesis"
ADMIN = "admin"
F = TypeVar("F", bound=Callable)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The configured keys, and the decision whether a request's bearer token may proceed."""

    def __init__(self, api_keys: Iterable[str] = (), admin_keys: Iterable[str] = ()) -> None:
        self._admin = [_digest(k) for k in admin_keys]
        self._api = [_digest(k) for k in api_keys]

    @property
    def synthesis_open(self) -> bool:
        """No API keys configured: anyone may synthesise (admin keys alone close nothing)."""
        return not self._api

    @property
    def admin_enabled(self) -> bool:
        return bool(self._admin)

    def check(self, scope: str, authorization: str | None) -> None:
        """Return if the token may use `scope`; else raise ApiError 401 or 403."""
        if scope == SYNTHESIS and self.synthesis_open:
            return
        if scope == ADMIN and not self._admin:
            raise ApiError(403, "voice_management_disabled",
                           "voice management is off: set VOXLINE_ADMIN_KEYS to turn it on")
        token = bearer_token(authorization)
        if token is None:
            raise ApiError(401, "missing_api_key",
                           "send an API key as 'Authorization: Bearer KEY'",
                           {"WWW-Authenticate": "Bearer"})
        digest = _digest(token)
        if _matches(digest, self._admin):
            return
        if not _matches(digest, self._api):
            raise ApiError(401, "invalid_api_key", "the API key is not valid",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if scope == ADMIN:
            raise ApiError(403, "admin_key_required", "voice management needs an admin key")

    def describe(self) -> list[str]:
        """Startup log lines saying what is open and what is off."""
        lines = []
        if self.synthesis_open:
            lines.append("no VOXLINE_API_KEYS: synthesis is open to every client that can "
                         "reach the server")
        else:
            lines.append("synthesis needs an API key (Authorization: Bearer)")
        if self._admin:
            lines.append("voice management (/v1/voices) needs an admin key")
        else:
            lines.append("no VOXLINE_ADMIN_KEYS: voice management (/v1/voices) is off")
        return lines


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _matches(digest: bytes, keys: list[bytes]) -> bool:
    found = False
    for key in keys:  # no early exit: the time does not say which key matched
        found |= hmac.compare_digest(digest, key)
    return found


def require_key(scope: str) -> Callable[[F], F]:
    """Decorate a view so it runs only for a request whose key allows `scope`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            current_app.keys.check(scope, request.headers.get("Authorization"))
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate

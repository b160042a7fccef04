"""The HTTP control API a voicebot uses to speak on AudioSocket calls (JSON, stdlib server)."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .server import CallRegistry
from .session import SessionError

logger = logging.getLogger(__name__)

_CALL_ROUTE = re.compile(r"^/calls/([0-9a-fA-F-]{36})(?:/(say|flush|hangup|events|session))?$")
_MAX_BODY = 64 * 1024
_MAX_WAIT_S = 30.0


class ApiError(Exception):
    """A client mistake, answered with a status and a JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ControlServer(ThreadingHTTPServer):
    """Serves the control API for the calls in a registry."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: CallRegistry) -> None:
        super().__init__(address, _ControlHandler)
        self.registry = registry

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()


class _ControlHandler(BaseHTTPRequestHandler):
    """Routes: GET /health, /calls, /calls/ID, /calls/ID/events;
    POST /calls/ID/say|flush|hangup|session."""

    server: ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Send access logs to logging instead of stderr."""
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Read-only routes."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Routes that act on a call."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        """Route a request and turn ApiError into a JSON error."""
        url = urllib.parse.urlsplit(self.path)
        try:
            status, body = self._route(method, url.path, urllib.parse.parse_qs(url.query))
        except ApiError as exc:
            status, body = exc.status, {"error": exc.code, "message": exc.message}
        self._reply(status, body)

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, object]:
        """The API itself."""
        registry = self.server.registry
        if path == "/health" and method == "GET":
            return 200, {"status": "ok", "calls": len(registry.all())}
        if path == "/calls" and method == "GET":
            return 200, {"calls": [call.describe() for call in registry.all()]}
        match = _CALL_ROUTE.match(path)
        if not match:
            raise ApiError(404, "not_found", f"no route {method} {path}")
        call = registry.get(match.group(1))
        if call is None:
            raise ApiError(404, "no_such_call", "no live call with that id")
        action = match.group(2)
        if method == "GET" and action is None:
            return 200, call.describe()
        if method == "GET" and action == "events":
            since = _number(query, "since", 0, int)
            wait = min(_number(query, "wait", 0.0, float), _MAX_WAIT_S)
            events, last = call.events(int(since), float(wait))
            return 200, {"events": events, "last": last}
        if method != "POST" or action in (None, "events"):
            raise ApiError(405, "method_not_allowed", f"{method} not allowed on {path}")
        if action == "say":
            body = self._json_body()
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ApiError(400, "missing_text", "give a non-empty 'text'")
            if body.get("flush"):
                call.flush()
            try:
                utterance = call.say(
                    text, str(body.get("voice") or ""), str(body.get("language") or "")
                )
            except ConnectionError as exc:
                raise ApiError(404, "no_such_call", str(exc)) from exc
            return 202, {"utterance": utterance}
        if action == "session":
            return 202, self._session_message(call)
        if action == "flush":
            return 200, {"dropped": call.flush()}
        call.hangup()
        return 202, {"hangup": True}

    def _session_message(self, call) -> dict[str, object]:
        """Forward one realtime session message (input_text.append / flush / end,
        context.cancel) to the call's session on the Voxline server. A cancel is answered
        with the server's `context.cancelled`, narrowed to what the caller heard."""
        body = self._json_body()
        try:
            ack = call.session_message(body)
        except ValueError as exc:
            raise ApiError(400, "bad_message", str(exc)) from exc
        except ConnectionError as exc:
            raise ApiError(404, "no_such_call", str(exc)) from exc
        except SessionError as exc:
            raise ApiError(502, "session_unavailable", str(exc)) from exc
        return {"sent": body["type"], **(ack or {})}

    def _json_body(self) -> dict[str, object]:
        """The request's JSON object body."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ApiError(413, "too_large", "request body too large")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            raise ApiError(400, "bad_json", "the body is not JSON") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json", "the body must be a JSON object")
        return body

    def _reply(self, status: int, body: object) -> None:
        """Send a JSON response."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _number(query: dict[str, list[str]], name: str, default: float, kind: type) -> float:
    """A numeric query parameter."""
    try:
        return kind(query[name][0]) if name in query else default
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name} must be a number") from exc

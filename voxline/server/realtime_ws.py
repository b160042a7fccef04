"""The websocket door to realtime sessions: `GET /v1/audio/speech/stream` (flask-sock).

Under gunicorn's gthread worker each open websocket holds one pool thread for its whole life
(simple-websocket adds a reader thread per socket, each context two more), so VOXLINE_THREADS
must cover VOXLINE_SESSION_MAX plus the HTTP requests served at once.
"""

from __future__ import annotations

import logging
import socket

from flask import Blueprint, Flask, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from voxline.realtime.session import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN,
    MAX_MESSAGE_BYTES,
    Session,
    SessionLimit,
)
from voxline.realtime.synth import Synthesis
from voxline.server.auth import SYNTHESIS
from voxline.server.flaskapp import app_keys, app_services
from voxline.synthesis.services import Services

logger = logging.getLogger(__name__)
PATH = "/v1/audio/speech/stream"
CLOSE_RESTART = 1012  # RFC 6455 "service restart": the client should reconnect
POLL_S = 0.25  # how often the reader looks up from the socket (idle and close checks)


def _authorise() -> None:
    """Bearer header, or `?api_key=` for browsers (they cannot set websocket headers)."""
    authorization = request.headers.get("Authorization")
    key = request.args.get("api_key")
    if not authorization and key:
        authorization = f"Bearer {key}"
    app_keys().check(SYNTHESIS, authorization)
    app_services().require_ready()


def speech_stream(ws, services: Services, limit: SessionLimit) -> None:
    """Serve one session; no exception ever leaves this function (flask-sock would write an
    HTTP 500 onto the upgraded socket): an unexpected one closes the session with 1011."""
    try:
        _session(ws, services, limit)
    except ConnectionClosed:
        pass
    except Exception:
        logger.exception("websocket session failed")
        try:
            ws.send('{"type": "error", "error": {"code": "internal_error", "message": '
                    '"the server failed; the session is closed"}}')
            _close(ws, CLOSE_INTERNAL_ERROR, "internal error")
        except Exception:  # noqa: BLE001 - the socket may be gone already
            pass


def _session(ws, services: Services, limit: SessionLimit) -> None:
    if not limit.enter():
        ws.send(
            '{"type": "error", "error": {"code": "busy", "message": '
            '"too many sessions open; try again later"}}'
        )
        _close(ws, CLOSE_TRY_AGAIN, "server busy")
        return
    settings = services.settings
    if settings.session_ping_s:
        # A client that takes no audio loses its session, as an HTTP stream does. (Only with
        # pings: the socket's reader then waits in select(), never in a timed-out recv().)
        ws.sock.settimeout(settings.write_timeout_s)
    session = Session(
        Synthesis(services),
        ws.send,
        max_contexts=settings.session_max_contexts,
        max_chars=settings.max_chars,
    )
    logger.info("session %s opened", session.id[:8])
    try:
        session.start()
        code, reason = _serve(ws, session, services, settings.session_idle_s)
        with session.lock:
            session.close()
            _close(ws, code, reason)
    except ConnectionClosed:
        pass
    finally:
        session.close()
        limit.leave()
        logger.info("session %s closed", session.id[:8])


def _serve(ws, session: Session, services: Services, idle_s: float) -> tuple[int, str]:
    """Read messages until the session asks to close, stays idle too long, or the worker
    drains (SIGTERM) and the session has no audio in progress."""
    while session.closing is None:
        raw = ws.receive(timeout=POLL_S)
        if raw is not None:
            session.handle(raw)
        elif session.idle_s() > idle_s:
            return CLOSE_NORMAL, f"idle timeout: no message for {idle_s:g} s"
        elif services.draining and not session.contexts:
            return CLOSE_RESTART, "server restarting; reconnect"
    return session.closing


def _close(ws, code: int, reason: str) -> None:
    """Send the close frame, then end the TCP connection (the server closes first, RFC 6455
    7.1.1): without it a client may wait for EOF on servers that keep the socket open."""
    ws.close(code, reason)
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def init_app(app: Flask, services: Services) -> None:
    """Register the route, with keepalive pings and this app's session limit, for `services`
    (given here, not looked up per request)."""
    settings = services.settings
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": settings.session_ping_s or None,
        "max_message_size": MAX_MESSAGE_BYTES,
    }
    limit = SessionLimit(settings.session_max)
    bp = Blueprint("realtime", __name__)
    bp.before_request(_authorise)
    sock = Sock()

    @sock.route(PATH, bp=bp)
    def speech(ws) -> None:
        speech_stream(ws, services, limit)

    app.register_blueprint(bp)

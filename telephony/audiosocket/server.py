"""The AudioSocket listener (Asterisk connects here) and the registry of live calls."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading

from telephony.voxagi.config import Settings

from .call import Call
from .protocol import (
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_SLIN,
    KIND_UUID,
    ProtocolError,
    parse_uuid,
    read_frame,
)

logger = logging.getLogger(__name__)


class CallRegistry:
    """Live calls by id; a call leaves the registry when it ends."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        """Register a call, ending an older one with the same id."""
        with self._lock:
            old = self._calls.get(call.id)
            self._calls[call.id] = call
        if old is not None:
            old.close("replaced by a new connection with the same id")

    def remove(self, call: Call) -> None:
        """Forget a call (only if it is still the registered one)."""
        with self._lock:
            if self._calls.get(call.id) is call:
                del self._calls[call.id]

    def get(self, call_id: str) -> Call | None:
        """The live call with this id, if any."""
        with self._lock:
            return self._calls.get(call_id.lower())

    def all(self) -> list[Call]:
        """All live calls."""
        with self._lock:
            return list(self._calls.values())


class AudioSocketServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Accepts AudioSocket connections from Asterisk; one reader thread per call."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        settings: Settings,
        registry: CallRegistry,
        prebuffer_ms: int = 60,
    ) -> None:
        super().__init__(address, _AudioSocketHandler)
        self.settings = settings
        self.registry = registry
        self.prebuffer_ms = prebuffer_ms

    def stop(self) -> None:
        """Stop accepting and end every live call."""
        self.shutdown()
        self.server_close()
        for call in self.registry.all():
            call.hangup()
            call.close("server stopping")


class _AudioSocketHandler(socketserver.BaseRequestHandler):
    """Reads one call's frames until hang-up; the Call object does the sending."""

    server: AudioSocketServer

    def handle(self) -> None:
        """Wait for the UUID frame, then dispatch DTMF, audio and hang-up frames."""
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            first = read_frame(sock)
            if first is None or first.kind != KIND_UUID:
                logger.warning("connection without a UUID frame; closing")
                return
            call = Call(
                parse_uuid(first.payload), sock, self.server.settings, self.server.prebuffer_ms
            )
        except (ProtocolError, OSError) as exc:
            logger.warning("bad AudioSocket connection: %s", exc)
            return
        self.server.registry.add(call)
        call.start()
        logger.info("call %s connected", call.id)
        reason = "hangup"
        try:
            while not call.closed.is_set():
                frame = read_frame(sock)
                if frame is None:
                    reason = "connection closed"
                    break
                if frame.kind == KIND_SLIN:
                    continue  # caller audio: not used by the speaking side
                if frame.kind == KIND_DTMF:
                    call.on_dtmf(frame.payload.decode("ascii", "replace")[:1])
                elif frame.kind == KIND_HANGUP:
                    break
                elif frame.kind == KIND_ERROR:
                    reason = f"error from Asterisk: {frame.payload.hex()}"
                    break
        except (ProtocolError, OSError) as exc:
            reason = f"connection error: {exc}"
        finally:
            call.close(reason)
            self.server.registry.remove(call)
            logger.info("call %s ended: %s", call.id, reason)

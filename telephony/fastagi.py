"""FastAGI server: the voxline.agi behaviour as a threaded TCP service, one thread per call.

Run: python -m telephony.fastagi [--bind 127.0.0.1:4573]; dialplan:
AGI(agi://127.0.0.1:4573/say?voice=NAME,${QUOTE(${VOXLINE_TEXT})}).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

from telephony.voxagi.config import (
    SETTING_NAMES,
    ConfigError,
    Settings,
    from_environment,
    parse_address,
)
from telephony.voxagi.protocol import AgiChannel, AgiHangup, LineSource
from telephony.voxagi.script import call_arguments
from telephony.voxagi.speak import run_call

logger = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1:4573"
SCRIPTS = ("say", "")


def call_request(network_script: str, args: list[str]) -> tuple[str, dict[str, str]]:
    """The text and setting overrides of `say?voice=x&language=de` plus the AGI arguments."""
    name, _, query = network_script.partition("?")
    if name.strip("/") not in SCRIPTS:
        raise ConfigError(f"unknown FastAGI script {name!r}; use 'say'")
    values = dict(urllib.parse.parse_qsl(query))
    unknown = sorted(set(values) - set(SETTING_NAMES) - {"text"})
    if unknown:
        raise ConfigError(f"unknown setting(s) in the AGI URL: {', '.join(unknown)}")
    query_text = values.pop("text", "")
    text, overrides = call_arguments(args)
    return text or query_text, {**values, **overrides}


class FastAgiServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Accepts Asterisk's FastAGI connections; each call runs in its own thread."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: Settings) -> None:
        super().__init__(address, _CallHandler)
        self.settings = settings
        self._calls: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    @property
    def active_calls(self) -> int:
        """How many calls are being served now."""
        with self._lock:
            return len(self._calls)

    def track(self, sock: socket.socket, active: bool) -> None:
        """Record a call starting or ending."""
        with self._lock:
            if active:
                self._calls.add(sock)
            else:
                self._calls.discard(sock)
                self._idle.notify_all()

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let calls in progress finish for `grace` seconds, then cut them."""
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + grace
        with self._lock:
            while self._calls and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
            for sock in list(self._calls):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _CallHandler(socketserver.BaseRequestHandler):
    """One FastAGI connection: one call's prompt."""

    server: FastAgiServer

    def handle(self) -> None:
        """Serve the call and report the outcome as channel variables."""
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(sock, True)
        channel = AgiChannel(LineSource.from_socket(sock), sock.sendall)
        try:
            channel.start()
            base: Settings | ConfigError = self.server.settings
            try:
                script = channel.env.get("agi_network_script", "")
                text, overrides = call_request(script, channel.args)
            except ConfigError as exc:
                base, text, overrides = exc, "", {}
            outcome = run_call(channel, base, text, overrides)
            logger.info(
                "%s: %s %s %s",
                channel.env.get("agi_channel"),
                outcome.status,
                outcome.digit,
                outcome.error,
            )
        except AgiHangup as exc:
            logger.info("%s: call ended: %s", channel.env.get("agi_channel"), exc)
        finally:
            self.server.track(sock, False)


def main(argv: list[str] | None = None) -> int:
    """Serve FastAGI until SIGTERM or SIGINT, then drain calls gracefully."""
    parser = argparse.ArgumentParser(prog="python -m telephony.fastagi", description=__doc__)
    parser.add_argument(
        "--bind", default=None, help=f"host:port (default {DEFAULT_BIND}, or VOXLINE_FASTAGI_BIND)"
    )
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain at stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = from_environment()
    except ConfigError as exc:
        logger.error("bad configuration: %s", exc)
        return 2
    bind = args.bind or os.environ.get("VOXLINE_FASTAGI_BIND", DEFAULT_BIND)
    server = FastAgiServer(parse_address(bind, 4573), settings)
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="fastagi-accept", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    logger.info("FastAGI listening on %s:%s (TTS server %s)", host, port, settings.url)
    stopping.wait()
    logger.info("stopping: %d call(s) in progress", server.active_calls)
    server.stop(args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())

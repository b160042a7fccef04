"""Run the AudioSocket service: python -m telephony.audiosocket [--bind ...] [--control ...]."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from telephony.voxagi.config import ConfigError, from_environment, parse_address

from .service import AudioSocketService


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m telephony.audiosocket", description=__doc__)
    parser.add_argument(
        "--bind",
        default=env.get("VOXLINE_AUDIOSOCKET_BIND", "127.0.0.1:9092"),
        help="where Asterisk connects (host:port)",
    )
    parser.add_argument(
        "--control",
        default=env.get("VOXLINE_AUDIOSOCKET_CONTROL", "127.0.0.1:9093"),
        help="the HTTP control API (host:port)",
    )
    parser.add_argument(
        "--prebuffer-ms",
        type=int,
        default=int(env.get("VOXLINE_AUDIOSOCKET_PREBUFFER_MS", "60")),
        help="audio gathered before an utterance starts playing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = from_environment()
    except ConfigError as exc:
        logging.getLogger(__name__).error("bad configuration: %s", exc)
        return 2
    service = AudioSocketService(
        settings,
        parse_address(args.bind, 9092),
        parse_address(args.control, 9093),
        args.prebuffer_ms,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    service.start()
    stopping.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

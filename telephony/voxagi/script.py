"""Entry point of the voxline.agi script: one call on stdin/stdout, exits at hang-up."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Callable

from . import log
from .config import ConfigError, Settings, from_environment
from .protocol import AgiChannel, AgiHangup, LineSource
from .speak import run_call

logger = log.get_logger("voxline.agi")


def _write_all(fd: int) -> Callable[[bytes], None]:
    """A writer that pushes every byte to a descriptor."""

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def _on_sighup(signum: int, frame: FrameType | None) -> None:
    """Asterisk sends SIGHUP when the caller hangs up: unwind at once."""
    raise AgiHangup("SIGHUP")


def call_arguments(args: list[str]) -> tuple[str, dict[str, str]]:
    """Script arguments `text[,voice[,language]]` as the text and setting overrides."""
    text = args[0] if args else ""
    names = ("voice", "language")
    overrides = {names[i]: v for i, v in enumerate(args[1:3]) if v}
    return text, overrides


def main() -> int:
    """Run one AGI call; the exit status is 0 unless Asterisk never spoke to us."""
    log.configure(
        level=os.environ.get("VOXLINE_TTS_LOG_LEVEL", "WARNING").upper(),
        format="voxline.agi[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGHUP, _on_sighup)
    channel = AgiChannel(LineSource.from_fd(0), _write_all(1))
    try:
        channel.start()
        base: Settings | ConfigError
        try:
            base = from_environment()
        except ConfigError as exc:
            base = exc
        text, overrides = call_arguments(channel.args)
        run_call(channel, base, text, overrides)
    except AgiHangup:
        pass  # the caller left: nothing more to do, and nothing to report
    return 0

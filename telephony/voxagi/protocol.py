"""The Asterisk Gateway Interface wire protocol: environment, commands and replies."""

from __future__ import annotations

import os
import re
import select
import socket
from dataclasses import dataclass
from typing import Callable

__all__ = [
    "AgiChannel",
    "AgiCommandError",
    "AgiHangup",
    "AgiReply",
    "LineSource",
    "format_command",
    "parse_reply_line",
]

_REPLY = re.compile(r"^200 result=(-?\d+)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$")
_MAX_LINE = 65536


class AgiHangup(Exception):
    """The channel hung up or the connection to Asterisk closed."""


class AgiCommandError(Exception):
    """Asterisk rejected a command (510 unknown, 520 usage, or an unreadable reply)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AgiReply:
    """A successful (200) reply: the numeric result, optional data and optional end position."""

    result: int
    data: str | None = None
    endpos: int | None = None


def parse_reply_line(line: str) -> AgiReply:
    """Parse one `200 result=N (data) endpos=M` line; anything else raises AgiCommandError."""
    match = _REPLY.match(line)
    if not match:
        raise AgiCommandError(0, f"unparsable reply: {line!r}")
    result, data, endpos = match.groups()
    return AgiReply(int(result), data, int(endpos) if endpos is not None else None)


def _quote(arg: str) -> str:
    """Quote one argument so that spaces, quotes and backslashes survive Asterisk's parser."""
    if "\n" in arg or "\r" in arg:
        raise ValueError("AGI arguments cannot contain line breaks")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(name: str, *args: str | int) -> bytes:
    """Build a command line: the command name bare, text arguments quoted, numbers bare."""
    parts = [name] + [str(arg) if isinstance(arg, int) else _quote(arg) for arg in args]
    return (" ".join(parts) + "\n").encode("utf-8")


class LineSource:
    """Lines read from a raw descriptor, buffered here so that pending input stays visible."""

    def __init__(self, read: Callable[[int], bytes], fileno: int) -> None:
        self._read = read
        self._fileno = fileno
        self._buffer = b""
        self._eof = False

    @classmethod
    def from_fd(cls, fd: int) -> LineSource:
        """Lines from a pipe or file descriptor (the AGI script's stdin)."""
        return cls(lambda n: os.read(fd, n), fd)

    @classmethod
    def from_socket(cls, sock: socket.socket) -> LineSource:
        """Lines from a connected socket (a FastAGI connection)."""
        return cls(sock.recv, sock.fileno())

    def _fill(self) -> bool:
        """Read once more; False at end of input."""
        if self._eof:
            return False
        try:
            data = self._read(4096)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self._eof = True
            return False
        self._buffer += data
        if len(self._buffer) > _MAX_LINE and b"\n" not in self._buffer:
            raise AgiCommandError(0, "line too long from Asterisk")
        return True

    def readline(self) -> str:
        """Return the next line without its ending; EOF and HANGUP raise AgiHangup."""
        while b"\n" not in self._buffer:
            if not self._fill():
                raise AgiHangup("EOF from Asterisk")
        raw, _, self._buffer = self._buffer.partition(b"\n")
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line == "HANGUP":
            raise AgiHangup("HANGUP from Asterisk")
        return line

    def hangup_pending(self, timeout: float = 0.0) -> bool:
        """Whether EOF or a HANGUP line has arrived, waiting at most `timeout` seconds."""
        if b"\n" not in self._buffer and not self._eof:
            ready, _, _ = select.select([self._fileno], [], [], timeout)
            if ready and not self._fill():
                return True
        return self._eof or self._buffer.startswith(b"HANGUP")


def read_environment(lines: LineSource) -> dict[str, str]:
    """Read the `agi_*: value` header block that ends with an empty line."""
    env: dict[str, str] = {}
    while True:
        line = lines.readline()
        if not line:
            return env
        key, sep, value = line.partition(":")
        if sep:
            env[key.strip()] = value.strip()


class AgiChannel:
    """One AGI conversation: the call's `agi_*` environment plus a command/reply exchange."""

    def __init__(self, lines: LineSource, write: Callable[[bytes], object]) -> None:
        self.lines = lines
        self._write = write
        self.env: dict[str, str] = {}
        self.hung_up = False

    def start(self) -> AgiChannel:
        """Read the environment block; returns self for chaining."""
        try:
            self.env = read_environment(self.lines)
        except AgiHangup:
            self.hung_up = True
            raise
        return self

    @property
    def args(self) -> list[str]:
        """The script arguments agi_arg_1..N, in order."""
        out = []
        while f"agi_arg_{len(out) + 1}" in self.env:
            out.append(self.env[f"agi_arg_{len(out) + 1}"])
        return out

    def execute(self, line: bytes) -> AgiReply:
        """Send one raw command line and return its 200 reply."""
        if self.hung_up:
            raise AgiHangup("channel already hung up")
        try:
            self._write(line)
            return self._read_reply()
        except OSError as exc:
            self.hung_up = True
            raise AgiHangup(f"connection lost: {exc}") from exc
        except AgiHangup:
            self.hung_up = True
            raise

    def _read_reply(self) -> AgiReply:
        """Read one reply: 200 parses; 511 means hung up; 510, 520 and others raise."""
        line = self.lines.readline()
        code = line[:3]
        if code == "200":
            return parse_reply_line(line)
        if code == "511":
            raise AgiHangup(line)
        if line.startswith("520-"):
            text = [line[4:]]
            while True:
                more = self.lines.readline()
                if more.startswith("520 "):
                    text.append(more[4:])
                    raise AgiCommandError(520, "\n".join(text))
                text.append(more)
        if code.isdigit():
            raise AgiCommandError(int(code), line[4:])
        raise AgiCommandError(0, f"unparsable reply: {line!r}")

    def hangup_pending(self, timeout: float = 0.0) -> bool:
        """Whether Asterisk has told us (HANGUP or EOF) that the call is gone."""
        if not self.hung_up and self.lines.hangup_pending(timeout):
            self.hung_up = True
        return self.hung_up

    def command(self, name: str, *args: str | int) -> AgiReply:
        """Send a command: its name, then text (quoted) and numeric arguments."""
        return self.execute(format_command(name, *args))

    def get_variable(self, name: str) -> str | None:
        """Return a channel variable, or None when it is not set."""
        reply = self.command("GET VARIABLE", name)
        return reply.data if reply.result == 1 else None

    def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""
        self.command("SET VARIABLE", name, value)

    def stream_file(self, path: str, escape_digits: str = "") -> AgiReply:
        """Play a sound file (path without extension); result is the digit's code, 0 or -1."""
        return self.command("STREAM FILE", path, escape_digits)

    def verbose(self, message: str, level: int = 3) -> None:
        """Write a message to the Asterisk console at a verbosity level."""
        self.command("VERBOSE", message.replace("\n", " "), level)

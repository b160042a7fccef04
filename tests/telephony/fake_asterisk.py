"""A scripted Asterisk on the other end of an AGI connection, for tests without Asterisk."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from telephony.voxagi.protocol import AgiChannel, LineSource

Responder = Callable[[str], list[str]]


def default_responder(command: str) -> list[str]:
    """Answer like Asterisk does when everything works and no channel variable is set."""
    if command.startswith("GET VARIABLE"):
        return ["200 result=0"]
    if command.startswith("STREAM FILE"):
        return ["200 result=0 endpos=8000"]
    return ["200 result=1"]


class FakeAsterisk:
    """Serves one AGI conversation over a socket pair; records every command it receives."""

    def __init__(self, env: dict[str, str] | None = None, respond: Responder | None = None):
        self.env = {"agi_request": "voxline.agi", "agi_channel": "Local/test-1;2", **(env or {})}
        self.respond = respond or default_responder
        self.commands: list[tuple[float, str]] = []
        self.ours, self.theirs = socket.socketpair()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def channel(self) -> AgiChannel:
        """The script's side, with the environment already read."""
        return AgiChannel(LineSource.from_socket(self.theirs), self.theirs.sendall).start()

    def _serve(self) -> None:
        """Send the environment, then answer commands until the script goes away."""
        sock = self.ours
        header = "".join(f"{k}: {v}\n" for k, v in self.env.items()) + "\n"
        sock.sendall(header.encode())
        reader = sock.makefile("rb")
        try:
            for raw in reader:
                command = raw.decode().rstrip("\n")
                self.commands.append((time.monotonic(), command))
                replies = self.respond(command)
                if replies:
                    sock.sendall("".join(line + "\n" for line in replies).encode())
        except OSError:
            pass
        finally:
            reader.close()

    def variables(self) -> dict[str, str]:
        """The channel variables the script set (last value wins)."""
        found = {}
        for _, command in self.commands:
            if command.startswith("SET VARIABLE "):
                name, value = _args(command[len("SET VARIABLE ") :])
                found[name] = value
        return found

    def played(self) -> list[str]:
        """The files the script asked to play, in order."""
        return [
            _args(c[len("STREAM FILE ") :])[0]
            for _, c in self.commands
            if c.startswith("STREAM FILE ")
        ]

    def close(self) -> None:
        """Close both ends."""
        for sock in (self.ours, self.theirs):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.thread.join(2)


def _args(text: str) -> list[str]:
    """Split quoted AGI arguments the way Asterisk's parser does."""
    out, current, quoted, escaped, started = [], [], False, False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
            started = True
        elif char == " " and not quoted:
            if started or current:
                out.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
    if started or current:
        out.append("".join(current))
    return out

"""An AudioSocket listener that plays the caller: it timestamps every audio frame it receives."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from array import array
from dataclasses import dataclass, field

from telephony.audiosocket.protocol import (
    KIND_HANGUP,
    KIND_SLIN,
    KIND_UUID,
    ProtocolError,
    encode,
    parse_uuid,
    read_frame,
)


@dataclass
class Heard:
    """What one call's caller heard: s16 frames with arrival times (time.time, as Asterisk logs)."""

    call_id: str
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket | None = None

    def first_sound(self, threshold: int = 64) -> float | None:
        """Arrival time of the first frame with a sample louder than `threshold`."""
        for when, frame in list(self.frames):
            if peak(frame) > threshold:
                return when
        return None

    def last_sound(self, threshold: int = 64) -> float | None:
        """Arrival time of the last frame with a sample louder than `threshold`."""
        for when, frame in reversed(list(self.frames)):
            if peak(frame) > threshold:
                return when
        return None

    def samples(self) -> array:
        """Everything heard as one array of signed 16-bit samples."""
        out = array("h")
        for _, frame in list(self.frames):
            out.frombytes(frame)
        return out

    def hang_up(self) -> None:
        """The caller hangs up (AudioSocket hang-up frame, then close)."""
        if self.sock is not None:
            try:
                self.sock.sendall(encode(KIND_HANGUP))
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def peak(frame: bytes) -> int:
    """The largest absolute sample of an s16le frame."""
    samples = array("h", frame[: len(frame) // 2 * 2])
    return max((abs(s) for s in samples), default=0)


class Probe(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Collects `Heard` per call id; start with `serve()`, stop with `stop()`."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProbeHandler)
        self.calls: dict[str, Heard] = {}
        self.changed = threading.Condition()
        self.address = "{}:{}".format(*self.server_address[:2])

    def serve(self) -> Probe:
        """Serve in a daemon thread."""
        threading.Thread(target=self.serve_forever, name="probe", daemon=True).start()
        return self

    def wait_call(self, call_id: str, timeout: float = 10.0) -> Heard:
        """Wait until the caller side with this id has connected."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while call_id not in self.calls:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"caller {call_id} never connected to the probe")
                self.changed.wait(left)
            return self.calls[call_id]

    def stop(self) -> None:
        """Stop serving."""
        self.shutdown()
        self.server_close()


class _ProbeHandler(socketserver.BaseRequestHandler):
    """Record frames until the call ends."""

    server: Probe

    def handle(self) -> None:
        """Read the UUID frame, then timestamp audio frames."""
        sock: socket.socket = self.request
        heard: Heard | None = None
        try:
            first = read_frame(sock)
            if first is None or first.kind != KIND_UUID:
                return
            heard = Heard(parse_uuid(first.payload), sock=sock)
            with self.server.changed:
                self.server.calls[heard.call_id] = heard
                self.server.changed.notify_all()
            while True:
                frame = read_frame(sock)
                if frame is None or frame.kind == KIND_HANGUP:
                    break
                if frame.kind == KIND_SLIN:
                    heard.frames.append((time.time(), frame.payload))
        except (ProtocolError, OSError):
            pass
        finally:
            if heard is not None:
                heard.ended.set()

"""AudioSocket framing: a kind byte, a 2-byte big-endian length, then the payload."""

from __future__ import annotations

import socket
import struct
import uuid
from dataclasses import dataclass

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_SLIN = 0x10
KIND_ERROR = 0xFF

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # 320 bytes of s16le
_HEADER = struct.Struct(">BH")


class ProtocolError(Exception):
    """The peer sent something that is not an AudioSocket frame."""


@dataclass(frozen=True)
class Frame:
    """One AudioSocket message."""

    kind: int
    payload: bytes = b""


def encode(kind: int, payload: bytes = b"") -> bytes:
    """Serialise one frame."""
    if len(payload) > 0xFFFF:
        raise ValueError("AudioSocket payloads are at most 65535 bytes")
    return _HEADER.pack(kind, len(payload)) + payload


def _read_exact(sock: socket.socket, count: int) -> bytes | None:
    """Read exactly `count` bytes, or None at a clean end of stream."""
    chunks = []
    while count:
        data = sock.recv(count)
        if not data:
            if chunks:
                raise ProtocolError("connection closed inside a frame")
            return None
        chunks.append(data)
        count -= len(data)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> Frame | None:
    """Read one frame; None when the peer closed the connection."""
    header = _read_exact(sock, _HEADER.size)
    if header is None:
        return None
    kind, length = _HEADER.unpack(header)
    payload = _read_exact(sock, length) if length else b""
    if payload is None:
        raise ProtocolError("connection closed inside a frame")
    return Frame(kind, payload)


def parse_uuid(payload: bytes) -> str:
    """The call id of a UUID frame in canonical text form."""
    if len(payload) != 16:
        raise ProtocolError(f"UUID frame of {len(payload)} bytes")
    return str(uuid.UUID(bytes=payload))

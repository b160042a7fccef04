"""A websocket-capable server around an app with a fake engine, and a small message client."""

from __future__ import annotations

import base64
import json
import threading
import time

import numpy as np
import pytest
from websockets.sync.client import connect
from werkzeug.serving import make_server


class Server:
    """Werkzeug's threaded server in a thread (simple-websocket supports it like gunicorn)."""

    def __init__(self, app) -> None:
        self.app = app
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.http.server_port
        self.url = f"ws://127.0.0.1:{self.port}/v1/audio/speech/stream"
        self.clients: list[Client] = []
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def connect(self, query: str = "", **kwargs) -> Client:
        # Entered as a context manager: websockets >= 17.1 warns about direct use otherwise.
        ws = connect(self.url + query, open_timeout=5, close_timeout=2, **kwargs).__enter__()
        self.clients.append(Client(ws))
        return self.clients[-1]

    def stop(self) -> None:
        """Close the clients a test left open (their sessions would idle on for a minute,
        polling), then the listener."""
        for client in self.clients:
            client.close()
        self.http.shutdown()


class Client:
    """A websocket with helpers to send messages and read typed ones with a time bound."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen: list[dict] = []

    def send(self, type_: str, **fields) -> None:
        self.ws.send(json.dumps({"type": type_, **fields}))

    def recv(self, timeout: float = 5.0) -> dict:
        message = json.loads(self.ws.recv(timeout=timeout))
        self.seen.append(message)
        return message

    def until(self, type_: str, timeout: float = 10.0, **match) -> list[dict]:
        """Messages up to and including the first of `type_` matching `match`."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            got.append(message)
            if message["type"] == type_ and all(message.get(k) == v for k, v in match.items()):
                return got

    def close(self) -> None:
        self.ws.close()


def audio_of(messages: list[dict], context_id: str = "default") -> bytes:
    return b"".join(
        base64.b64decode(m["audio"])
        for m in messages
        if m["type"] == "speech.audio.delta" and m["context_id"] == context_id
    )


def pcm(samples: np.ndarray) -> bytes:
    """What the server's pcm format makes of float samples (the default 'limit' level)."""
    from voxline.audio.levels import apply_level, parse_level_policy

    int16 = apply_level(parse_level_policy("limit"), samples.astype(np.float32))
    return int16.astype("<i2").tobytes()


@pytest.fixture
def serve(make_app):
    """Serve an app around `engine` over real websockets; stops the servers after."""
    servers: list[Server] = []

    def start(engine, **settings) -> Server:
        server = Server(make_app(engine, **settings))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

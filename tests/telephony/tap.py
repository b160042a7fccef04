"""A pass-through HTTP proxy in front of the TTS server that records every response body."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Exchange:
    """One proxied request (its query, or its JSON body for POST /tts) and the answer."""

    query: dict
    status: int = 0
    content_type: str = ""
    body: bytearray = field(default_factory=bytearray)

    @property
    def audio(self) -> bytes:
        """The audio served: the body, or the `audio` of a timed JSON answer."""
        if self.content_type.startswith("application/json"):
            return base64.b64decode(json.loads(self.body)["audio"])
        return bytes(self.body)

    @property
    def words(self) -> list[dict]:
        """The words of a timed JSON answer."""
        return json.loads(self.body)["words"]


class Tap:
    """Forward requests to `upstream`, streaming chunks through as they arrive; records the
    GET /tts_stream and POST /tts exchanges."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                tap.forward(self)

            def do_POST(self) -> None:
                tap.forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tts_requests(self) -> list[Exchange]:
        """The /tts_stream and /tts exchanges so far."""
        with self.lock:
            return list(self.exchanges)

    def reset(self) -> None:
        """Forget recorded exchanges."""
        with self.lock:
            self.exchanges.clear()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        """Proxy one request, copying the body to the client and to the record."""
        split = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        sent = handler.rfile.read(length) if handler.command == "POST" else None
        query = json.loads(sent) if sent else dict(urllib.parse.parse_qsl(split.query))
        exchange = Exchange(query)
        if split.path.endswith(("/tts_stream", "/tts")):
            with self.lock:
                self.exchanges.append(exchange)
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {"Content-Type": handler.headers.get("Content-Type", "")} if sent else {}
            conn.request(handler.command, handler.path, body=sent, headers=headers)
            response = conn.getresponse()
            exchange.status = response.status
            exchange.content_type = response.getheader("Content-Type", "")
            handler.send_response(response.status)
            handler.send_header("Content-Type", exchange.content_type)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            while data := response.read1(8192):
                exchange.body += data
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the proxy."""
        self.server.shutdown()
        self.server.server_close()

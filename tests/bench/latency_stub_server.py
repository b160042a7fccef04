"""A tiny streaming server with Voxline's routes, for testing the benchmark without a model."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 24000
CHUNK_SAMPLES = 480
SAMPLES_PER_CHAR = 10


class StubServer:
    """Streams `len(text) * 10` samples of s16le silence in 480-sample chunks."""

    def __init__(self, chunk_delay_s: float = 0.0, reject: int = 0) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.reject = reject  # answer this many /tts_stream requests with 503 first
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/ready":
                    self._json(200, {"ready": True})
                elif self.path == "/health":
                    self._json(200, {"engine": "tone", "device": "cpu", "deepspeed": False})
                elif self.path == "/languages":
                    self._json(200, ["en", "de"])
                else:
                    self._json(404, {"error": "not_found", "message": self.path})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                with stub.lock:
                    stub.payloads.append(payload)
                    rejected = stub.reject > 0
                    stub.reject -= 1 if rejected else 0
                if rejected:
                    self._json(
                        503, {"error": "busy", "message": "queue full"}, [("Retry-After", "1")]
                    )
                    return
                total = len(payload["text"]) * SAMPLES_PER_CHAR
                self.send_response(200)
                self.send_header("Content-Type", f"audio/pcm;rate={RATE}")
                self.send_header("X-Sample-Rate", str(RATE))
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, total, CHUNK_SAMPLES):
                    if stub.chunk_delay_s:
                        time.sleep(stub.chunk_delay_s)
                    data = bytes(2 * min(CHUNK_SAMPLES, total - start))
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A tiny stand-in TTS server: a tone as µ-law or PCM, plus the failure modes the tests need."""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def ulaw_byte(sample: int) -> int:
    """Encode one signed 16-bit sample as G.711 µ-law."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_pcm(text: str, rate: int = 8000) -> list[int]:
    """A deterministic tone whose length and pitch depend on the text (60 ms per character)."""
    count = rate * 60 * max(1, len(text)) // 1000
    freq = 300 + (sum(text.encode()) % 500)
    return [int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)]


def tone_ulaw(text: str) -> bytes:
    """tone_pcm as the stub serves it in µ-law."""
    return bytes(ulaw_byte(s) for s in tone_pcm(text))


def tone_words(text: str) -> list[dict]:
    """Words of `text` timed as tone_pcm times characters (60 ms each)."""
    return [
        {
            "word": m.group(),
            "start_ms": 60.0 * m.start(),
            "end_ms": 60.0 * m.end(),
            "text_start": m.start(),
            "text_end": m.end(),
        }
        for m in re.finditer(r"\w+", text)
    ]


class StubTts:
    """Serve GET /tts_stream and POST /tts (timed JSON) on a loopback port; `mode` switches
    behaviour, `requests` records each request's query or JSON body. `busy` answers 503 with
    `retry_after` as its Retry-After header for the next `busy` requests, then serves."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.busy = 0
        self.retry_after = "1"
        self.requests: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                stub.handle(self)

            def do_POST(self) -> None:
                stub.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request according to the current mode."""
        if handler.command == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            query = json.loads(handler.rfile.read(length))
        else:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
        self.requests.append(query)
        if self.mode == "slow":
            time.sleep(30)
            return
        busy, self.busy = self.busy > 0, max(0, self.busy - 1)
        if self.mode == "error" or busy:
            body = b'{"error": "busy", "message": "queue full"}'
            handler.send_response(503)
            if busy:
                handler.send_header("Retry-After", self.retry_after)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        pcm = tone_pcm(query.get("text", ""), int(query.get("sample_rate", "8000")))
        if query.get("format") == "pcm":
            body = b"".join(s.to_bytes(2, "little", signed=True) for s in pcm)
            ctype = "audio/pcm;rate=8000"
        else:
            body = bytes(ulaw_byte(s) for s in pcm)
            ctype = "audio/basic" if self.mode != "bad_type" else "text/html"
        if query.get("timestamps") is True:
            audio = base64.b64encode(body).decode("ascii")
            doc = {"audio": audio, "format": query.get("format"), "sample_rate": 8000}
            body = json.dumps({**doc, "words": tone_words(query["text"])}).encode()
            ctype = "application/json" if self.mode != "bad_type" else "text/html"
        handler.send_response(200)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

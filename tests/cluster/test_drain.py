"""SIGTERM to a real gunicorn: /ready says 503 at once, requests still arriving during the drain
delay are served, the stream in flight finishes whole, then the process exits."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests

from bench.cluster_load import StreamClient
from voxline.engines.tone import SECONDS_PER_CHAR

pytestmark = pytest.mark.slow

LONG = {"text": "A stream that lasts about three seconds.", "format": "pcm", "cache": False}


def test_sigterm_drains_then_exits(spawn_server):
    server = spawn_server(VOXLINE_ENGINE="tone", VOXLINE_DRAIN_DELAY_S="1.5")
    first = StreamClient(server.url)
    whole = first.request("/tts_stream", {**LONG, "speed": 4})
    first.close()
    assert whole.ok
    expected_len = 2 * round(len(LONG["text"]) * SECONDS_PER_CHAR * 24000)  # 16-bit samples

    results = []
    client = StreamClient(server.url)
    stream = threading.Thread(target=lambda: results.append(client.request("/tts_stream", LONG)))
    stream.start()
    time.sleep(0.5)  # the stream is under way
    server.proc.send_signal(signal.SIGTERM)
    termed_at = time.monotonic()
    time.sleep(0.2)
    ready = requests.get(server.url + "/ready", timeout=2)
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    # Within the drain delay a new request (sent before the balancer noticed) is served.
    late = requests.post(server.url + "/tts_stream", json={**LONG, "speed": 4}, timeout=10)
    assert late.status_code == 200 and late.content == whole.data
    # Past the delay no new connections: gthread closes its listener at its loop's next turn
    # (a 1 s poll) after the drain sets `alive = False`.
    while True:
        try:
            requests.get(server.url + "/health", timeout=2)
        except requests.ConnectionError:
            break
        assert time.monotonic() - termed_at < 1.5 + 1.0 + 3.0, "still accepting connections"
        time.sleep(0.1)
    assert time.monotonic() - termed_at >= 1.5  # not before the drain delay
    stream.join(30)
    client.close()
    (out,) = results
    assert out.ok and len(out.data) == expected_len  # finished whole
    assert server.proc.wait(10) == 0
    assert "draining" in server.read_log()

"""The shipped HAProxy config on its own edges: every replica down or full (503 + Retry-After,
after one retry elsewhere), and a websocket upgrade passed through as a tunnel."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import socketserver
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from devtools.cluster import Cluster, Proxy, find_haproxy, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"


@pytest.fixture
def proxy_for(tmp_path):
    """Start HAProxy in front of the given (name, port) replicas."""
    started: list[Proxy] = []

    def start(*ports: int) -> Proxy:
        replicas = [SimpleNamespace(name=f"r{i + 1}", port=p) for i, p in enumerate(ports)]
        proxy = Proxy(tmp_path, replicas)
        proxy.start(find_haproxy())
        started.append(proxy)
        deadline = time.monotonic() + 10
        while not proxy.socket_path.exists():
            assert time.monotonic() < deadline, proxy.log_path.read_text()
            time.sleep(0.05)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def test_every_replica_down_is_a_json_503_with_retry_after(proxy_for):
    proxy = proxy_for(free_port(), free_port())
    proxy.wait_state("r1", "DOWN", 10)
    response = requests.post(proxy.url + "/tts_stream", json={"text": "Hi."}, timeout=10)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"] == "unavailable"


def holding(url: str) -> bool:
    """Whether a replica is rendering or has a request waiting (its /health)."""
    health = requests.get(url + "/health", timeout=5).json()
    return health["busy"] or health["queue_depth"] > 0


def test_every_replica_full_passes_their_503_after_one_retry(tmp_path):
    env = {
        "VOXLINE_MAX_ACTIVE": "1",
        "VOXLINE_MAX_QUEUE": "0",
        "VOXLINE_LOG_LEVEL": "warning",
        "VOXLINE_CACHE_DIR": str(tmp_path / "cache"),
    }
    body = {"text": "A stream of about two seconds.", "format": "pcm", "cache": False}
    with Cluster(2, "tone", run_dir=tmp_path, env=env) as cluster:
        results: list[int] = []
        holders = [
            threading.Thread(
                target=lambda: results.append(
                    requests.post(cluster.url + "/tts_stream", json=body, timeout=30).status_code
                )
            )
            for _ in range(2)
        ]
        for thread in holders:
            thread.start()
        # One stream on each replica (leastconn) before the third comes.
        wait_until(lambda: all(holding(r.url) for r in cluster.replicas), 10, "two streams")
        refused = requests.post(cluster.url + "/tts_stream", json=body, timeout=30)
        for thread in holders:
            thread.join(30)
    assert results == [200, 200]
    assert refused.status_code == 503 and refused.json()["error"] == "queue_full"
    assert int(refused.headers["Retry-After"]) >= 1
    # The proxy's log shows one retry, redispatched to the other replica ("+1", %rc).
    log = (tmp_path / "haproxy.log").read_text().splitlines()
    (line,) = [row for row in log if " 503 " in row and "POST /tts_stream" in row]
    assert line.split()[7].split("/")[4] == "+1", line


class Upgrading(socketserver.BaseRequestHandler):
    """A replica stand-in: /ready is 200; a websocket upgrade becomes a byte echo."""

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        if headers.get("upgrade", "").lower() != "websocket":
            body = b'{"ready": true}'
            self.request.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            return
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()
        )
        self.request.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        while data := self.request.recv(4096):
            self.request.sendall(data)


def test_websocket_upgrade_is_tunnelled_both_ways(proxy_for):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upgrading)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proxy = proxy_for(server.server_address[1])
        proxy.wait_state("r1", "UP", 10)
        key = base64.b64encode(b"0123456789abcdef").decode()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(
                f"GET /v1/audio/speech/stream HTTP/1.1\r\nHost: voxline\r\nUpgrade: websocket"
                f"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(4096)
            head, _, rest = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            for message in (b"\x81\x05hello", b"\x82\x03abc" * 100):
                sock.sendall(message)
                echoed = rest
                while len(echoed) < len(message):
                    echoed += sock.recv(65536)
                assert echoed == message
                rest = b""
    finally:
        server.shutdown()
        server.server_close()


def test_keys_in_queries_never_reach_the_proxy_or_replica_logs(tmp_path):
    """`?api_key=` (how browsers authenticate a websocket) is redacted in HAProxy's log line,
    refused or accepted, over HTTP and on the websocket route; Authorization is never logged."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    accepted, refused = "acceptedKey-51c0ffee", "refusedKey-9dead0a1"
    env = {"VOXLINE_API_KEYS": accepted, "VOXLINE_CACHE_DIR": str(tmp_path / "cache")}
    with Cluster(1, "tone", run_dir=tmp_path, env=env) as cluster:
        ws_url = cluster.url.replace("http", "ws", 1) + "/v1/audio/speech/stream"
        with pytest.raises(InvalidStatus):
            with connect(f"{ws_url}?api_key={refused}", open_timeout=10):
                pass
        with connect(f"{ws_url}?x=1&api_key={accepted}", open_timeout=10) as ws:
            assert '"session.created"' in ws.recv(timeout=10)
        response = requests.get(
            cluster.url + "/speakers",
            params={"api_key": refused},
            headers={"Authorization": f"Bearer {accepted}"},
            timeout=10,
        )
        assert response.status_code == 200
        requests.get(cluster.url + "/tts_stream", params={"text": "Hi.", "API_KEY": refused},
                     timeout=10)
        requests.get(cluster.url + "/health?last=1", timeout=10)
        deadline = time.monotonic() + 5
        while "/health?last=1" not in cluster.proxy.log_path.read_text():
            assert time.monotonic() < deadline, cluster.proxy.log_path.read_text()
            time.sleep(0.05)
    proxy_log = cluster.proxy.log_path.read_text()
    replica_log = (tmp_path / "r1.log").read_text()
    for secret in (accepted, refused):
        assert secret not in proxy_log and secret not in replica_log
    assert '"GET /v1/audio/speech/stream?api_key=REDACTED HTTP/1.1"' in proxy_log, proxy_log
    assert '"GET /v1/audio/speech/stream?x=1&api_key=REDACTED HTTP/1.1"' in proxy_log
    assert '"GET /speakers?api_key=REDACTED HTTP/1.1"' in proxy_log
    assert '"GET /tts_stream?text=Hi.&API_KEY=REDACTED HTTP/1.1"' in proxy_log


def test_the_json_error_pages_are_valid_http():
    from devtools.cluster import HAPROXY_CONFIG

    for page in sorted((HAPROXY_CONFIG.parent / "errors").glob("*.http")):
        head, _, body = page.read_bytes().partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert page.stem == str(status)
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        assert length == len(body) and json.loads(body)["error"]


def test_cluster_command_serves_then_stops_everything_on_sigterm(tmp_path):
    """`scripts/cluster N engine` (its Python part): prints the URL, serves, SIGTERM ends all."""
    import os
    import signal
    import subprocess
    import sys

    from devtools.cluster import ROOT

    env = {**os.environ, "VOXLINE_CACHE_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.cluster", "2", "tone"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        replicas = {
            requests.get(url + "/health", timeout=5).headers["X-Voxline-Replica"] for _ in range(6)
        }
        assert replicas == {"r1", "r2"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)
    (run_dir,) = tmp_path.glob("voxline-cluster-*")
    for log in ("r1.log", "r2.log"):
        assert "draining" in (run_dir / log).read_text()

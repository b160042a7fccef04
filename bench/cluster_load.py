"""Closed-loop streaming clients for the cluster tests and bench/cluster.py (stdlib only).

Each client sends one streaming request, reads it to the end, records what happened (status,
bytes, time to first audio byte, which replica answered, how it ended), and sends the next.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

READ_SIZE = 16 * 1024


@dataclass
class Outcome:
    """One request as the client saw it; times are time.monotonic() values."""

    client: int
    start: float
    end: float
    status: int | None = None
    data: bytes = b""
    ttfa_s: float | None = None
    replica: str | None = None
    error: str | None = None  # the exception that ended it, if any (a visible failure)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


class StreamClient:
    """One keep-alive connection to a base URL; reconnects after any failure."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, path: str, body: dict | None = None, client: int = 0) -> Outcome:
        """POST `body` as JSON (GET when None) and read the whole response."""
        start = time.monotonic()
        out = Outcome(client, start, start)
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            if body is None:
                self.conn.request("GET", path)
            else:
                self.conn.request(
                    "POST", path, json.dumps(body), {"Content-Type": "application/json"}
                )
            response = self.conn.getresponse()
            out.status, out.replica = response.status, response.getheader("X-Voxline-Replica")
            parts = []
            while chunk := response.read1(READ_SIZE):
                if out.ttfa_s is None:
                    out.ttfa_s = time.monotonic() - start
                parts.append(chunk)
            parts.append(response.read())  # ends a Content-Length body properly (read1 won't)
            out.data = b"".join(parts)
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            self.close()
        out.end = time.monotonic()
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def closed_loop(
    url: str, clients: int, stop: threading.Event, body: dict, path: str = "/tts_stream"
) -> list[Outcome]:
    """Run `clients` closed-loop clients until `stop` is set; every outcome, in end order."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def loop(index: int) -> None:
        client = StreamClient(url)
        while not stop.is_set():
            out = client.request(path, body, index)
            with lock:
                outcomes.append(out)
        client.close()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(60)
    return outcomes


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

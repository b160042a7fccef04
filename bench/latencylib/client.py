"""One streaming TTS request over http.client, timed read by read with perf_counter."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from .player import Arrival, coalesce, simulate_player
from .stats import percentile

READ_SIZE = 64 * 1024
# Reads closer together than this are one server chunk that TCP delivered in pieces.
CHUNK_COALESCE_S = 0.001


@dataclass
class RequestResult:
    """Every measurement of one request; times in seconds, relative to its own send."""

    index: int
    workload: str
    mode: str
    level: float
    text_id: str
    language: str
    chars: int
    forced_tokens: int | None  # min_new_tokens = max_new_tokens sent (per sentence)
    sentences: int | None = None  # engine calls the server makes for this text
    scheduled_s: float | None = None  # open loop: planned send offset from the cell start
    sent_s: float = 0.0  # actual send offset from the cell start
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None
    refusals: int = 0  # 503s answered before this (served or last) attempt
    waited_s: float = 0.0  # first send -> this attempt's send (Retry-After waits)
    sample_rate: int | None = None
    ttfa_s: float | None = None
    ttlb_s: float | None = None
    bytes: int = 0
    audio_s: float = 0.0
    rtf: float | None = None
    chunks: int = 0
    gap_max_s: float | None = None
    gap_p95_s: float | None = None
    underruns: int = 0
    stall_s: float = 0.0
    read_t: list[float] = field(default_factory=list)
    read_n: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and self.bytes > 0

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["read_t"] = [round(t, 6) for t in self.read_t]
        data["ok"] = self.ok
        return data


@dataclass(frozen=True)
class Target:
    """Where the server listens."""

    host: str
    port: int
    path_prefix: str = ""

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http://host:port URL, got {url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path_prefix}"


def get_json(target: Target, path: str, timeout: float = 10.0) -> tuple[int, dict | list | None]:
    """GET a JSON endpoint; returns (status, parsed body or None)."""
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.request("GET", target.path_prefix + path)
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body) if body else None
        except ValueError:
            return resp.status, None
    finally:
        conn.close()


def stream_tts(
    target: Target,
    payload: dict[str, object],
    result: RequestResult,
    timeout: float,
    bytes_per_sample: int = 2,
    prebuffer_s: float = 0.0,
) -> RequestResult:
    """POST /tts_stream, read the body as it arrives, and fill in `result`'s measurements."""
    body = json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "*/*"}
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    reads: list[Arrival] = []
    t0 = time.perf_counter()
    try:
        conn.request("POST", target.path_prefix + "/tts_stream", body=body, headers=headers)
        resp = conn.getresponse()
        result.status = resp.status
        if resp.status != 200:
            result.retry_after = resp.getheader("Retry-After")
            result.error = _error_text(resp.read())
            return result
        rate = resp.getheader("X-Sample-Rate")
        result.sample_rate = int(rate) if rate else None
        while True:
            data = resp.read1(READ_SIZE)
            now = time.perf_counter()
            if not data:
                break
            reads.append(Arrival(now - t0, len(data)))
    except (TimeoutError, OSError, http.client.HTTPException, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    _measure(result, reads, bytes_per_sample, prebuffer_s)
    return result


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "error" in data:
            return f"{data.get('error')}: {data.get('message', '')}"
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace")


def _measure(
    result: RequestResult, reads: list[Arrival], bytes_per_sample: int, prebuffer_s: float
) -> None:
    result.read_t = [a.t for a in reads]
    result.read_n = [a.nbytes for a in reads]
    result.bytes = sum(a.nbytes for a in reads)
    if not reads:
        if result.error is None and result.status == 200:
            result.error = "empty audio stream"
        return
    result.ttfa_s = reads[0].t
    result.ttlb_s = reads[-1].t
    if not result.sample_rate:
        result.error = result.error or "response has no X-Sample-Rate header"
        return
    bytes_per_second = result.sample_rate * bytes_per_sample
    result.audio_s = result.bytes / bytes_per_second
    result.rtf = result.ttlb_s / result.audio_s if result.audio_s > 0 else None
    chunks = coalesce(reads, CHUNK_COALESCE_S)
    result.chunks = len(chunks)
    gaps = [b.t - a.t for a, b in zip(chunks, chunks[1:], strict=False)]
    result.gap_max_s = max(gaps) if gaps else None
    result.gap_p95_s = percentile(gaps, 95) if gaps else None
    played = simulate_player(reads, bytes_per_second, prebuffer_s)
    result.underruns = played.underruns
    result.stall_s = played.stall_s

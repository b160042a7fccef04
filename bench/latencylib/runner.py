"""Run benchmark cells: a workload at a concurrency level (closed loop) or arrival rate (open)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from .client import RequestResult, Target, stream_tts
from .schedule import poisson_schedule
from .stats import describe
from .texts import BenchText, forced_tokens_per_call


@dataclass(frozen=True)
class RequestPlan:
    """How every request of the run is built."""

    speaker: str | None = None
    sample_rate: int | None = None
    params: dict[str, object] = field(default_factory=dict)  # top_k, temperature, ...
    seed: int | None = 1234  # request i of a cell gets seed + i; None sends none
    force_length: bool = False
    max_tokens_cap: int | None = None
    timeout_s: float = 300.0
    prebuffer_s: float = 0.0
    # A refused client waits the server's Retry-After and sends the same request again (as a
    # dialer would), at most `max_refusals` times; off: a 503 ends the request.
    retry_503: bool = False
    max_refusals: int = 30

    def payload(self, text: BenchText, index: int) -> tuple[dict[str, object], int | None, int]:
        """The JSON body of request `index`, the GPT length it forces on each sentence (None:
        not forced) and how many sentences the server will split the text into."""
        body: dict[str, object] = {"text": text.text, "language": text.language, "format": "pcm"}
        if self.speaker:
            body["speaker"] = self.speaker
        if self.sample_rate:
            body["sample_rate"] = self.sample_rate
        body.update(self.params)
        if self.seed is not None:
            body["seed"] = self.seed + index
        tokens, sentences = forced_tokens_per_call(text.text, text.language, self.max_tokens_cap)
        if self.force_length:
            body["min_new_tokens"] = tokens
            body["max_new_tokens"] = tokens
        return body, (tokens if self.force_length else None), sentences


@dataclass
class Cell:
    """One workload × level measurement."""

    workload: str
    mode: str  # "closed" (level = concurrency) or "open" (level = Poisson rate, requests/s)
    level: float
    requests: list[RequestResult] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, object]:
        """Percentiles and totals over the requests that succeeded; errors counted apart."""
        ok = [r for r in self.requests if r.ok]
        rejected = [r for r in self.requests if r.status == 503]
        audio = sum(r.audio_s for r in ok)
        return {
            "requests": len(self.requests),
            "ok": len(ok),
            "errors": len(self.requests) - len(ok) - len(rejected),
            "rejected_503": len(rejected),
            "wall_s": self.wall_s,
            "audio_s": audio,
            "throughput_audio_s_per_s": audio / self.wall_s if self.wall_s > 0 else None,
            "ttfa_s": describe([r.ttfa_s for r in ok if r.ttfa_s is not None]),
            "ttlb_s": describe([r.ttlb_s for r in ok if r.ttlb_s is not None]),
            "rtf": describe([r.rtf for r in ok if r.rtf is not None]),
            "audio_s_per_request": describe([r.audio_s for r in ok]),
            "gap_max_s": describe([r.gap_max_s for r in ok if r.gap_max_s is not None]),
            "underruns": describe([r.underruns for r in ok]),
            "stall_s": describe([r.stall_s for r in ok]),
            "requests_with_underrun": sum(1 for r in ok if r.underruns > 0),
            "served_after_503": sum(1 for r in ok if r.refusals > 0),
            "ttfa_with_waits_s": describe(
                [r.waited_s + r.ttfa_s for r in ok if r.ttfa_s is not None]),
            "send_lag_s": describe(
                [r.sent_s - r.scheduled_s for r in self.requests if r.scheduled_s is not None]
            ),
        }

    def to_json(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "mode": self.mode,
            "level": self.level,
            "wall_s": self.wall_s,
            "summary": self.summary(),
        }


def _new_result(
    cell: Cell, index: int, text: BenchText, tokens: int | None, sentences: int
) -> RequestResult:
    return RequestResult(
        index=index,
        workload=cell.workload,
        mode=cell.mode,
        level=cell.level,
        text_id=text.id,
        language=text.language,
        chars=len(text.text),
        forced_tokens=tokens,
        sentences=sentences,
    )


def _send_until_served(target: Target, plan: RequestPlan, body: dict[str, object],
                       new_result: Callable[[], RequestResult], start: float) -> RequestResult:
    """One request; with `plan.retry_503`, sent again after each 503's Retry-After."""
    first = time.perf_counter()
    refusals = 0
    while True:
        result = new_result()
        result.sent_s = time.perf_counter() - start
        result.refusals, result.waited_s = refusals, time.perf_counter() - first
        stream_tts(target, body, result, plan.timeout_s, prebuffer_s=plan.prebuffer_s)
        if result.status != 503 or not plan.retry_503 or refusals >= plan.max_refusals:
            return result
        refusals += 1
        time.sleep(_retry_after_s(result.retry_after))


def _retry_after_s(header: str | None) -> float:
    try:
        return max(0.0, float(header)) if header else 1.0
    except ValueError:
        return 1.0


def run_closed(
    target: Target,
    plan: RequestPlan,
    texts: list[BenchText],
    workload: str,
    concurrency: int,
    count: int,
    on_done: Callable[[RequestResult], None] | None = None,
) -> Cell:
    """`concurrency` clients each send their next request as soon as the last one ends."""
    if concurrency < 1 or not texts:
        raise ValueError("need concurrency >= 1 and at least one text")
    cell = Cell(workload, "closed", concurrency)
    results: list[RequestResult | None] = [None] * count
    lock = threading.Lock()
    next_index = iter(range(count))
    start = time.perf_counter()

    def worker() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            text = texts[index % len(texts)]
            body, tokens, sentences = plan.payload(text, index)
            result = _send_until_served(
                target, plan, body, partial(_new_result, cell, index, text, tokens, sentences),
                start)
            results[index] = result
            if on_done:
                on_done(result)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cell.wall_s = time.perf_counter() - start
    cell.requests = [r for r in results if r is not None]
    return cell


def run_open(
    target: Target,
    plan: RequestPlan,
    texts: list[BenchText],
    workload: str,
    rate_per_s: float,
    count: int,
    seed: int,
    on_done: Callable[[RequestResult], None] | None = None,
) -> Cell:
    """Send `count` requests at Poisson arrival times, whether or not earlier ones finished."""
    if not texts:
        raise ValueError("need at least one text")
    cell = Cell(workload, "open", rate_per_s)
    offsets = poisson_schedule(rate_per_s, count, seed)
    results: list[RequestResult | None] = [None] * count
    threads: list[threading.Thread] = []
    start = time.perf_counter()

    def send(index: int, result: RequestResult, body: dict[str, object]) -> None:
        result.sent_s = time.perf_counter() - start
        stream_tts(target, body, result, plan.timeout_s, prebuffer_s=plan.prebuffer_s)
        results[index] = result
        if on_done:
            on_done(result)

    for index, offset in enumerate(offsets):
        text = texts[index % len(texts)]
        body, tokens, sentences = plan.payload(text, index)
        result = _new_result(cell, index, text, tokens, sentences)
        result.scheduled_s = offset
        delay = offset - (time.perf_counter() - start)
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=send, args=(index, result, body), daemon=True)
        thread.start()
        threads.append(thread)
    for t in threads:
        t.join()
    cell.wall_s = time.perf_counter() - start
    cell.requests = [r for r in results if r is not None]
    return cell

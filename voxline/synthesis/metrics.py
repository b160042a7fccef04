"""Prometheus instruments of the synthesis core: requests, first audio, real-time factor,
cache use, stream failures, and live facts read at scrape time. Served by the HTTP door."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

TTFA_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

class Metrics:
    """The app's instruments; `observe_stream` wraps a response body to time it."""

    def __init__(self, services) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("voxline_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=r)
        self.ttfa = Histogram("voxline_ttfa_seconds",
                              "Time from request arrival to the first audio byte",
                              ["route", "cache"], buckets=TTFA_BUCKETS, registry=r)
        self.rtf = Histogram("voxline_rtf",
                             "Real-time factor of completed syntheses: synthesis time over "
                             "audio duration (below 1 is faster than real time)",
                             buckets=RTF_BUCKETS, registry=r)
        self.active_streams = Gauge("voxline_active_streams",
                                    "Audio responses being sent now", registry=r)
        self.cache = Counter("voxline_phrase_cache_requests",
                             "Phrase cache lookups: hit (from disk), shared (joined an identical "
                             "render in progress), miss (synthesised), bypass (opted out or off)",
                             ["result"], registry=r)
        for result in ("hit", "shared", "miss", "bypass"):
            self.cache.labels(result)
        self.stream_failures = Counter(
            "voxline_stream_failures", "Responses aborted after their audio had started, by "
            "stage: synthesis, encode, stall (no audio for too long), write_timeout (the client "
            "took nothing), internal", ["stage"], registry=r)
        for stage in ("synthesis", "encode", "stall", "write_timeout", "internal"):
            self.stream_failures.labels(stage)
        r.register(_LiveCollector(services))

    def observe_stream(self, body: Iterator[bytes], route: str, cache: str,
                       started: float) -> Iterator[bytes]:
        """Count the body as an active stream and time its first audio byte."""
        self.active_streams.inc()
        first = True
        try:
            for data in body:
                if first and data:
                    self.ttfa.labels(route, cache).observe(time.perf_counter() - started)
                    first = False
                yield data
        finally:
            self.active_streams.dec()
            close = getattr(body, "close", None)
            if close is not None:
                close()


class _LiveCollector:
    """Reads queue, voices, cache and engine facts at scrape time."""

    def __init__(self, services) -> None:
        self._services = services

    def collect(self):
        svc = self._services
        yield GaugeMetricFamily("voxline_queue_depth", "Requests waiting for the model",
                                value=svc.scheduler.depth)
        yield GaugeMetricFamily("voxline_model_busy", "1 while the model is synthesising",
                                value=int(bool(svc.scheduler.busy)))
        yield GaugeMetricFamily("voxline_capacity_streams",
                                "Real-time streams the measured engine pace sustains",
                                value=svc.scheduler.capacity_streams)
        decisions = CounterMetricFamily("voxline_admissions", "Admission decisions",
                                        labels=["decision"])
        for decision, count in svc.scheduler.admissions.items():
            decisions.add_metric([decision], count)
        yield decisions
        voices = svc.voices.names() if svc.voices is not None else []
        yield GaugeMetricFamily("voxline_voices", "Voices ready to use", value=len(voices))
        entries, size = svc.phrases.stats()
        yield GaugeMetricFamily("voxline_phrase_cache_entries", "Renders in the phrase cache",
                                value=entries)
        yield GaugeMetricFamily("voxline_phrase_cache_bytes",
                                "Bytes of renders in the phrase cache", value=size)
        yield GaugeMetricFamily("voxline_ready", "1 once the server is ready",
                                value=int(svc.ready))
        info = InfoMetricFamily("voxline_engine", "The speech engine being served")
        engine = svc.engine
        if engine is not None:
            info.add_metric([], {"engine": svc.engine_name, "model_id": engine.model_id,
                                 "device": str(engine.device),
                                 "sample_rate": str(engine.sample_rate)})
        yield info
        stats = engine.stats if engine is not None else None
        if stats is not None:
            yield from _engine_stats(stats)


def _engine_stats(stats):
    """Rows per GPT step, tokens, GPT and vocoder time (rate() of the counters gives tokens/s
    and the vocoder's share)."""
    cumulative, total = [], 0
    for bound, count in zip([*(str(float(b)) for b in stats.row_buckets), "+Inf"], stats.row_counts,
                            strict=True):
        total += count
        cumulative.append((bound, total))
    yield HistogramMetricFamily("voxline_batch_rows", "Rows (streams) per GPT forward pass",
                                buckets=cumulative, sum_value=stats.rows)
    for name, text, value in (
        ("voxline_gpt_tokens", "GPT tokens generated (all rows)", stats.tokens),
        ("voxline_gpt_seconds", "Time in GPT forward passes and sampling", stats.gpt_s),
        ("voxline_vocoder_seconds", "Time in the vocoder (HiFi-GAN)", stats.vocoder_s),
        ("voxline_engine_audio_seconds", "Seconds of audio the engine produced", stats.audio_s),
    ):
        yield CounterMetricFamily(name, text, value=value)

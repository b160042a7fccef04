"""/metrics parsed with prometheus-client's own parser, counters moving with requests; the
request id in every log line of a request, streamed bodies included."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeEngine
from voxline.server.body import StreamAborted


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_requests(client):
    before = scrape(client)
    speak = {"text": "Hello.", "format": "pcm"}
    assert client.post("/tts_stream", json=speak).data
    assert client.post("/tts_stream", json=speak).data  # a hit
    assert client.post("/tts_stream", json={"text": ""}).status_code == 400
    assert client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi.",
                                                 "voice": "alloy", "response_format": "wav",
                                                 "cache": False}).data
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("voxline_requests_total", route="/tts_stream", status="200") == 2
    assert moved("voxline_requests_total", route="/tts_stream", status="400") == 1
    assert moved("voxline_requests_total", route="/v1/audio/speech", status="200") == 1
    assert moved("voxline_phrase_cache_requests_total", result="miss") == 1
    assert moved("voxline_phrase_cache_requests_total", result="hit") == 1
    assert moved("voxline_phrase_cache_requests_total", result="bypass") == 1
    assert moved("voxline_ttfa_seconds_count", route="/tts_stream", cache="miss") == 1
    assert moved("voxline_ttfa_seconds_count", route="/tts_stream", cache="hit") == 1
    assert moved("voxline_ttfa_seconds_count", route="/v1/audio/speech", cache="bypass") == 1
    assert moved("voxline_rtf_count") == 2  # the two syntheses, not the hit
    assert value(after, "voxline_phrase_cache_entries") == 1
    assert value(after, "voxline_phrase_cache_bytes") > 0
    assert value(after, "voxline_active_streams") == 0


def test_gauges_and_engine_info(client):
    samples = scrape(client)
    assert value(samples, "voxline_voices") == 2
    assert value(samples, "voxline_queue_depth") == 0
    assert value(samples, "voxline_model_busy") == 0
    assert value(samples, "voxline_ready") == 1
    assert value(samples, "voxline_engine_info", engine="fake", model_id="fake", device="cpu",
                 sample_rate="24000") == 1


def test_active_streams_counts_an_open_stream(make_app, engine):
    from tests.server.test_api import call_wsgi

    app = make_app(engine)
    _, body = call_wsgi(app, method="POST", path="/tts_stream", json={"text": "Hello."})
    chunks = iter(body)
    next(chunks)
    assert value(scrape(app.test_client()), "voxline_active_streams") == 1
    body.close()
    assert value(scrape(app.test_client()), "voxline_active_streams") == 0


def test_request_id_is_in_every_log_line_of_a_request(make_app, caplog):
    caplog.set_level(logging.INFO)
    engine = FakeEngine()
    engine.fail_after = 1  # logged by the request's thread while its response streams
    client = make_app(engine).test_client()
    headers = {"X-Request-Id": "call-42"}
    streamed = client.post("/tts_stream", json={"text": "Hello."}, headers=headers)
    assert streamed.headers["X-Request-Id"] == "call-42"
    with pytest.raises(StreamAborted):
        streamed.get_data()
    assert client.post("/tts_stream", json={"text": ""}, headers=headers).status_code == 400
    ours = [r for r in caplog.records
            if r.name.startswith(("voxline.server", "voxline.synthesis"))]
    during = [r for r in ours if "synthesis failed" in r.getMessage()
              or "render failed" in r.getMessage()
              or "stream aborted" in r.getMessage() or "missing_text" in r.getMessage()]
    assert len(during) == 3  # the render thread, the response body, the 400
    assert {r.request_id for r in during} == {"call-42"}
    startup = [r for r in ours if "engine: fake" in r.getMessage()]
    assert startup and startup[0].request_id == "-"
    # Logged on the scheduler's thread, which works for many requests in turn.
    loop = [r for r in caplog.records
            if r.name == "voxline.scheduler" and "synthesis failed" in r.getMessage()]
    assert loop and {r.request_id for r in loop} == {"call-42"}


def test_log_format_carries_the_request_id():
    from voxline.server.logctx import LOG_FORMAT, RequestIdFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestIdFilter().filter(record)
    assert logging.Formatter(LOG_FORMAT).format(record).endswith("hello rid=-")


class CountingEngine(FakeEngine):
    """A fake engine that reports throughput counters as a batching engine does."""

    def __init__(self) -> None:
        super().__init__()
        from voxline.engines.base import EngineStats

        self._stats = EngineStats()

    @property
    def stats(self):
        return self._stats


def test_batch_rows_tokens_and_vocoder_time(make_app):
    engine = CountingEngine()
    client = make_app(engine).test_client()
    for rows in (1, 3, 3, 4, 9):
        engine.stats.observe_step(rows, 0.01)
    engine.stats.vocoder_s = 0.25
    samples = scrape(client)
    buckets = {le: value(samples, "voxline_batch_rows_bucket", le=le)
               for le in ("1.0", "2.0", "4.0", "8.0", "16.0", "+Inf")}
    assert buckets == {"1.0": 1, "2.0": 1, "4.0": 4, "8.0": 4, "16.0": 5, "+Inf": 5}
    assert value(samples, "voxline_batch_rows_count") == 5
    assert value(samples, "voxline_batch_rows_sum") == 20
    assert value(samples, "voxline_gpt_tokens_total") == 20
    assert value(samples, "voxline_vocoder_seconds_total") == 0.25
    assert abs(value(samples, "voxline_gpt_seconds_total") - 0.05) < 1e-9


def test_engines_without_counters_have_no_batch_metrics(client):
    assert not any(name.startswith("voxline_batch_rows") for name, _ in scrape(client))

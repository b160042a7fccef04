"""/metrics exports the measured capacity and the admission decisions (for autoscalers)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeEngine


def scrape(client) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_capacity_and_admissions_are_exported(make_app):
    engine = FakeEngine(n_chunks=4, chunk_len=24000)  # 4 s of audio in 4 steps
    engine.delay_s = 0.05  # about 20 s of audio a second
    app = make_app(engine)
    client = app.test_client()
    assert scrape(client)[("voxline_capacity_streams", ())] == 0  # nothing measured yet
    speak = {"text": "Hello.", "format": "pcm", "cache": False}
    assert client.post("/tts_stream", json=speak).status_code == 200
    samples = scrape(client)
    capacity = samples[("voxline_capacity_streams", ())]
    assert 3 < capacity <= 17  # 85 % of at most 20 s/s, however busy the machine is
    assert samples[("voxline_admissions_total", (("decision", "admitted"),))] == 1
    assert samples[("voxline_admissions_total", (("decision", "refused"),))] == 0

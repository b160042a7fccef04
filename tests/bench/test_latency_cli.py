"""Smoke run of the CLI against a server it spawns through gunicorn, with the tone engine."""

import json
from pathlib import Path

import latency
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / "app.py").exists(), reason="the server is not there yet"),
]


def test_spawned_tone_server_run_with_overhead(tmp_path):
    # A one-line text set keeps the real-time tone engine's streams short.
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps(
            {
                "version": "smoke",
                "texts": [
                    {
                        "id": "s1",
                        "workload": "short",
                        "language": "en",
                        "text": "Hello there, caller.",
                    },
                ],
            }
        )
    )
    out = tmp_path / "out"
    rc = latency.main(
        [
            "--spawn",
            "--engine",
            "tone",
            "--server-env",
            "VOXLINE_TONE_CHUNK_MS=10",
            "--server-env",
            f"VOXLINE_CACHE_DIR={tmp_path / 'cache'}",
            "--text-set",
            str(texts),
            "--workloads",
            "short",
            "--concurrency",
            "1,2",
            "--requests",
            "2",
            "--warmup",
            "1",
            "--param",
            "speed=4",
            "--overhead",
            "2",
            "--no-progress",
            "--no-plots",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    run = json.loads((out / "latency.json").read_text())
    assert run["environment"]["health"]["engine"] == "tone"
    assert run["environment"]["spawned"]["VOXLINE_ENGINE"] == "tone"
    assert run["model_label"] == "tone"
    assert [c["summary"]["ok"] for c in run["cells"]] == [2, 2]
    for r in run["requests"]:
        assert r["sample_rate"] == 24000 and r["audio_s"] > 0 and r["ttfa_s"] <= r["ttlb_s"]
    overhead = run["overhead"][0]
    assert overhead["engine"] == "tone" and overhead["http_errors"] == 0
    assert len(overhead["raw_inprocess_first_chunk_s"]) == 2
    assert overhead["added_s"]["p50"] is not None
    assert "Server overhead" in (out / "latency.md").read_text()
    assert "Shutting down" in (out / "server.log").read_text()

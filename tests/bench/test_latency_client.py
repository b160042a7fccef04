"""Client, runner and CLI against a stub streaming server (no model, no gunicorn)."""

import json

import latency
import pytest
from latency_stub_server import RATE, SAMPLES_PER_CHAR, StubServer
from latencylib.client import RequestResult, Target, stream_tts
from latencylib.runner import RequestPlan, run_closed, run_open
from latencylib.texts import BenchText, estimate_gpt_tokens

TEXT = BenchText("t1", "short", "en", "Hello there, caller.")


def _result() -> RequestResult:
    return RequestResult(0, "short", "closed", 1, TEXT.id, "en", len(TEXT.text), None)


def test_stream_measures_bytes_audio_and_ordering():
    with StubServer() as stub:
        body = RequestPlan().payload(TEXT, 0)[0]
        r = stream_tts(Target.from_url(stub.url), body, _result(), timeout=10)
    assert r.ok, r.error
    samples = len(TEXT.text) * SAMPLES_PER_CHAR
    assert r.sample_rate == RATE
    assert r.bytes == 2 * samples
    assert r.audio_s == samples / RATE
    assert 0 < r.ttfa_s <= r.ttlb_s
    assert r.rtf == r.ttlb_s / r.audio_s
    assert sum(r.read_n) == r.bytes and len(r.read_t) == len(r.read_n)
    assert r.read_t == sorted(r.read_t)


def test_503_is_recorded_with_retry_after_and_no_audio():
    with StubServer(reject=1) as stub:
        body = RequestPlan().payload(TEXT, 0)[0]
        r = stream_tts(Target.from_url(stub.url), body, _result(), timeout=10)
    assert (r.status, r.retry_after, r.ok, r.bytes) == (503, "1", False, 0)
    assert "busy" in r.error


def test_connection_refused_is_an_error_not_an_exception():
    with StubServer() as stub:
        target = Target.from_url(stub.url)
    r = stream_tts(target, {"text": "x"}, _result(), timeout=2)
    assert not r.ok and r.status is None and r.error


def test_payload_forces_length_and_varies_seed():
    plan = RequestPlan(
        speaker="v", params={"top_k": 1}, seed=10, force_length=True, max_tokens_cap=37
    )
    body, tokens, sentences = plan.payload(TEXT, 3)
    assert body["seed"] == 13
    assert body["min_new_tokens"] == body["max_new_tokens"] == tokens
    assert sentences == 1
    assert tokens == min(37, estimate_gpt_tokens(TEXT.text, "en"))
    assert (body["format"], body["speaker"], body["top_k"]) == ("pcm", "v", 1)
    assert "min_new_tokens" not in RequestPlan().payload(TEXT, 0)[0]


def test_closed_loop_runs_every_request_once_and_counts_503s():
    texts = [TEXT, BenchText("t2", "short", "de", "Guten Tag.")]
    with StubServer(reject=2) as stub:
        cell = run_closed(Target.from_url(stub.url), RequestPlan(), texts, "short", 3, 10)
        seeds = sorted(p["seed"] for p in stub.payloads)
    assert [r.index for r in sorted(cell.requests, key=lambda r: r.index)] == list(range(10))
    assert seeds == [1234 + i for i in range(10)]
    s = cell.summary()
    assert (s["requests"], s["ok"], s["rejected_503"], s["errors"]) == (10, 8, 2, 0)
    assert s["ttfa_s"]["n"] == 8
    assert s["throughput_audio_s_per_s"] > 0
    assert {r.text_id for r in cell.requests} == {"t1", "t2"}


def test_open_loop_follows_the_seeded_schedule():
    with StubServer() as stub:
        cell = run_open(Target.from_url(stub.url), RequestPlan(), [TEXT], "short", 50.0, 5, 9)
    assert len(cell.requests) == 5 and all(r.ok for r in cell.requests)
    scheduled = [r.scheduled_s for r in sorted(cell.requests, key=lambda r: r.index)]
    assert scheduled == sorted(scheduled)
    assert cell.summary()["send_lag_s"]["n"] == 5


def test_cli_against_a_running_server_writes_json_markdown_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    with StubServer(chunk_delay_s=0.002) as stub:
        rc = latency.main(
            [
                "--url",
                stub.url,
                "--concurrency",
                "1,2",
                "--requests",
                "3",
                "--workloads",
                "short,medium",
                "--warmup",
                "1",
                "--no-progress",
                "--weights",
                "proxy",
                "--force-length",
                "on",
                "--out",
                str(out),
            ]
        )
    assert rc == 0
    run = json.loads((out / "latency.json").read_text())
    assert run["schema"] == "voxline-latency/1"
    assert run["text_set"] == "v1"
    assert [(c["workload"], c["level"]) for c in run["cells"]] == [
        ("short", 1),
        ("short", 2),
        ("medium", 1),
        ("medium", 2),
    ]
    assert len(run["requests"]) == 12 and all(r["ok"] for r in run["requests"])
    assert {r["language"] for r in run["requests"]} <= {"en", "de"}
    assert all(r["forced_tokens"] for r in run["requests"])
    assert run["environment"]["git"]["commit"]
    assert run["config"]["languages"] == ["de", "en"]
    md = (out / "latency.md").read_text()
    assert "| short | c=1 | 3/3 |" in md
    assert (out / "ttfa_cdf.png").stat().st_size > 0
    assert (out / "vs_concurrency.png").stat().st_size > 0
    assert "TTFA" in capsys.readouterr().out

    rc = latency.main(
        [
            "--combine",
            str(out / "latency.json"),
            str(out / "latency.json"),
            "--out",
            str(tmp_path / "cmp"),
        ]
    )
    assert rc == 0
    assert "| tone cpu | short | c=1 |" in (tmp_path / "cmp" / "combined.md").read_text()
    assert (tmp_path / "cmp" / "combined_vs_concurrency.png").exists()


def test_cli_needs_a_server_choice(capsys):
    assert latency.main(["--concurrency", "1"]) == 2
    with pytest.raises(SystemExit):
        latency.main(["--url", "http://x", "--spawn"])


def test_cli_refuses_a_server_that_does_not_match_expect(tmp_path):
    with StubServer() as stub:
        rc = latency.main(["--url", stub.url, "--expect", "deepspeed=true", "--out", str(tmp_path)])
        assert rc == 3
        assert stub.payloads == []


def test_cli_budget_skips_cells_and_still_writes_results(tmp_path):
    with StubServer() as stub:
        rc = latency.main(
            [
                "--url",
                stub.url,
                "--budget",
                "0",
                "--warmup",
                "0",
                "--concurrency",
                "1,2",
                "--workloads",
                "short",
                "--no-progress",
                "--out",
                str(tmp_path),
            ]
        )
    assert rc == 0
    run = json.loads((tmp_path / "latency.json").read_text())
    assert run["cells"] == [] and run["skipped_cells"] == ["short@c=1", "short@c=2"]
    assert "Skipped (time budget): short@c=1, short@c=2" in (tmp_path / "latency.md").read_text()


def test_cli_open_loop_rates(tmp_path):
    with StubServer() as stub:
        rc = latency.main(
            [
                "--url",
                stub.url,
                "--rates",
                "20,40",
                "--requests",
                "3",
                "--warmup",
                "0",
                "--workloads",
                "short",
                "--languages",
                "en",
                "--no-progress",
                "--no-plots",
                "--out",
                str(tmp_path),
            ]
        )
    assert rc == 0
    run = json.loads((tmp_path / "latency.json").read_text())
    assert [(c["mode"], c["level"]) for c in run["cells"]] == [("open", 20.0), ("open", 40.0)]
    assert all(r["scheduled_s"] is not None for r in run["requests"])
    assert "| short | λ=20/s | 3/3 |" in (tmp_path / "latency.md").read_text()


def test_closed_loop_with_retry_waits_the_retry_after_and_serves_every_request():
    with StubServer(reject=2) as stub:
        plan = RequestPlan(retry_503=True)
        cell = run_closed(Target.from_url(stub.url), plan, [TEXT], "short", 1, 3)
    s = cell.summary()
    assert (s["requests"], s["ok"], s["rejected_503"], s["served_after_503"]) == (3, 3, 0, 1)
    (retried,) = [r for r in cell.requests if r.refusals]
    assert retried.refusals == 2 and retried.waited_s >= 2.0  # two 503s, Retry-After: 1 each
    assert s["ttfa_with_waits_s"]["max"] >= 2.0 > s["ttfa_s"]["max"]

"""voxline_client.pipecat in a real Pipecat pipeline (pipecat-ai 1.14.0) against a real gunicorn.

pipecat-ai pins soxr 1.0.x and soundfile 0.13.x, which clash with the server's soxr 1.1.0, so
the Pipecat side runs in its own venv (built once and cached by pipecat_venv.sh) as a
subprocess (pipecat_driver.py) talking to the server over loopback; this side checks the audio.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.integrations.conftest import (
    dominant_hz,
    heard_text,
    longest_silence_ms,
    tone_samples,
)

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def pipecat_python() -> Path:
    """The Python of the cached pipecat venv (built on first use: ~20 s with pip's cache)."""
    try:
        out = subprocess.run(
            [str(HERE / "pipecat_venv.sh")], capture_output=True, text=True, timeout=900, check=True
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not build the pipecat venv:\n{exc.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1]) / "bin" / "python"


def run_driver(python: Path, server, out: Path, scenario: str) -> dict:
    proc = subprocess.run(
        [str(python), str(HERE / "pipecat_driver.py"), server.url, str(out), scenario],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=out,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def turn_audio(out: Path, n: int) -> np.ndarray:
    return np.frombuffer((out / f"turn-{n}.pcm").read_bytes(), "<i2").astype(np.float32) / 32768


def messages_of(report: dict, context_id: str) -> list[dict]:
    return [m for m in report["messages"] if m.get("context_id") == context_id]


def test_a_turn_streams_token_by_token(pipecat_python, tone_server, tmp_path):
    report = run_driver(pipecat_python, tone_server, tmp_path, "speak")
    assert report["finished"] and report["errors"] == []
    (context,) = report["contexts"]
    assert report["stopped"] == [context]
    rate = report["rate"]
    audio = turn_audio(tmp_path, 0)
    done = [m for m in messages_of(report, context) if m["type"] == "speech.audio.done"]
    # Audio came back while the LLM was still writing the reply (token aggregation).
    first_delta = next(m for m in messages_of(report, context) if m["type"] == "speech.audio.delta")
    assert first_delta["at"] < report["llm_end_at"]
    assert len(done) == 1
    # Every sample the server counted reached the pipeline, at the pipeline's rate.
    assert len(audio) == pytest.approx(done[0]["audio_ms"] * rate / 1000, abs=2)
    text = report["texts"]["speak"]
    assert abs(len(audio) - tone_samples(text, rate)) <= 4 * rate / 14
    assert dominant_hz(audio, rate) == pytest.approx(440, abs=5)
    assert longest_silence_ms(audio, rate) < 5
    segments = [m["text"] for m in messages_of(report, context) if m["type"] == "speech.segment"]
    assert " ".join(segments).split() == text.split()


def test_an_interruption_cancels_the_turn(pipecat_python, tone_server, tmp_path):
    report = run_driver(pipecat_python, tone_server, tmp_path, "interrupt")
    assert report["finished"] and report["errors"] == []
    rate = report["rate"]
    cut, second = report["contexts"]
    cut_messages = messages_of(report, cut)
    acks = [m for m in cut_messages if m["type"] == "context.cancelled"]
    assert len(acks) == 1
    ack_at = acks[0]["at"]
    assert ack_at - report["interrupted_at"] < 1.0  # two processes on a loaded machine
    # After the ack: no audio, no segment and no done of the interrupted turn.
    assert [m["type"] for m in cut_messages if m["at"] > ack_at] == []
    heard = len(turn_audio(tmp_path, 0))
    assert report["bytes_half_second_after"] == report["interrupted_after_bytes"] == 2 * heard
    assert acks[0]["audio_ms"] >= heard * 1000 / rate - 1
    assert acks[0]["audio_ms"] < tone_samples(report["texts"]["long"], rate) * 1000 / rate / 4
    assert cut not in report["stopped"]
    # The next turn is a new context on the same session and speaks in full.
    assert report["stopped"] == [second]
    audio = turn_audio(tmp_path, 1)
    assert abs(len(audio) - tone_samples(report["texts"]["second"], rate)) <= 2 * rate / 14
    assert dominant_hz(audio, rate) == pytest.approx(440, abs=5)


def test_after_an_interruption_the_context_holds_the_words_heard(
    pipecat_python, piper_server, tmp_path
):
    """Piper speaks a reply into an output device that plays in real time; the user barges in
    in the middle of a word: Pipecat's assistant context gets the words played, not the reply."""
    report = run_driver(pipecat_python, piper_server, tmp_path, "heard")
    assert report["finished"] and report["errors"] == []
    reply, cut = report["texts"]["reply"], report["cut_word"]
    assert cut["start_ms"] < report["played_ms"] < cut["end_ms"]
    heard = heard_text(reply, report["words"], report["played_ms"])
    assert heard and reply.startswith(heard) and len(heard) < len(reply) / 2
    assert report["context_after_cut"] == [{"role": "assistant", "content": heard}]
    # The next reply, not interrupted, goes into the context whole.
    assert report["context"][-1] == {"role": "assistant", "content": report["texts"]["second"]}

"""AAC output (OpenAI's `aac`): an ADTS stream from ffmpeg, streamed and whole."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxline.audio import AudioPipeline, encode_whole, resolve_output

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def sine(seconds: float, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True,
    ).stdout
    return json.loads(out)


def decoded_seconds(path: Path, rate: int) -> float:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ar",
                          str(rate), "pipe:1"], capture_output=True, check=True).stdout
    return len(out) / 2 / rate


def test_aac_spec_content_type_and_rates():
    spec = resolve_output("aac", None, 24000)
    assert (spec.format, spec.sample_rate, spec.content_type) == ("aac", 24000, "audio/aac")
    assert resolve_output("aac", 8000, 24000).sample_rate == 8000


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
def test_streamed_aac_is_adts_with_the_right_length(rate, tmp_path):
    x = sine(1.5)
    with AudioPipeline(resolve_output("aac", rate, 24000), 24000) as pipe:
        parts = [pipe.header()] + [pipe.feed(x[i:i + 480]) for i in range(0, len(x), 480)]
        parts.append(pipe.finish())
    data = b"".join(parts)
    assert data[:2] == b"\xff\xf1"  # ADTS sync word, MPEG-4, no CRC
    path = tmp_path / "out.aac"
    path.write_bytes(data)
    info = probe(path)
    assert info["format"]["format_name"] == "aac"
    assert info["streams"][0]["codec_name"] == "aac"
    assert int(info["streams"][0]["sample_rate"]) == rate
    # ADTS has no gapless metadata: the decoder keeps the encoder's 1024 priming samples and
    # the padding of the last 1024-sample frame.
    extra = decoded_seconds(path, rate) - 1.5
    assert 0 <= extra <= 2048 / rate + 0.005


def test_whole_aac_file(tmp_path):
    path = tmp_path / "whole.aac"
    path.write_bytes(encode_whole(resolve_output("aac", None, 24000), 24000, [sine(2.0)]))
    assert probe(path)["streams"][0]["codec_name"] == "aac"
    assert 0 <= decoded_seconds(path, 24000) - 2.0 <= 2048 / 24000 + 0.005

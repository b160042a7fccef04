"""Compressed formats through ffmpeg: decodable to the right rate and length, never leaked."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import fit_amplitude, run, tone

from voxline.audio import AudioPipeline, encode_whole, resolve_output

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

MP3_PRIMING = 1105  # LAME encoder delay (576) + decoder delay (529), in output samples
CASES = [("mp3", 24000), ("mp3", 8000), ("mp3", 44100), ("opus", 48000), ("flac", 22050)]


def _probe(path: Path) -> tuple[str, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    ).stdout
    stream = json.loads(out)["streams"][0]
    return stream["codec_name"], int(stream["sample_rate"])


def _decode(path: Path, rate: int) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ar", str(rate), "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, "<i2").astype(np.float64) / 32767


def _ffmpeg_children() -> list[int]:
    """Return ffmpeg processes whose parent is this test process (zombies included)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if name == "ffmpeg" and ppid == os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(("fmt", "rate"), CASES)
def test_streamed_output_decodes_to_rate_and_length(fmt: str, rate: int, tmp_path: Path) -> None:
    x = tone(1000, seconds=1.5)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(run(fmt, rate, x, 480))  # 20 ms chunks at 24 kHz
    codec, decoded_rate = _probe(path)
    assert codec == {"mp3": "mp3", "opus": "opus", "flac": "flac"}[fmt]
    assert decoded_rate == rate
    y = _decode(path, rate)
    # A streamed mp3 cannot carry the LAME gapless tag (it is written by seeking back), so
    # decoders keep the encoder's priming samples; opus and flac trim exactly.
    extra = MP3_PRIMING if fmt == "mp3" else 0
    assert abs((len(y) - extra) / rate - 1.5) <= 0.05
    amp, _ = fit_amplitude(y[extra + rate // 4 : extra + rate], 1000, rate)
    assert abs(20 * np.log10(amp / 0.5)) <= 1.0


@pytest.mark.parametrize(("fmt", "rate"), CASES)
def test_whole_file_has_exact_duration(fmt: str, rate: int, tmp_path: Path) -> None:
    path = tmp_path / f"out.{fmt}"
    spec = resolve_output(fmt, rate, 24000)
    path.write_bytes(encode_whole(spec, 24000, [tone(440, seconds=1.5)]))
    assert _probe(path)[1] == rate
    assert abs(len(_decode(path, rate)) / rate - 1.5) <= 0.05


def test_one_huge_chunk_does_not_deadlock() -> None:
    x = tone(300, seconds=60)  # 2.9 MB of s16le in one write; ffmpeg output must keep draining
    assert len(run("flac", 24000, x, len(x))) > 10_000


@pytest.mark.parametrize("fmt", ("mp3", "opus", "flac"))
def test_close_mid_stream_reaps_ffmpeg(fmt: str) -> None:
    pipe = AudioPipeline(resolve_output(fmt, None, 24000), 24000)
    x = tone(440, seconds=0.5)
    for i in range(0, len(x), 480):
        pipe.feed(x[i : i + 480])
    pid = pipe.process_id
    assert pid is not None and pid in _ffmpeg_children()
    pipe.close()
    assert pid not in _ffmpeg_children()
    assert not Path(f"/proc/{pid}").exists()
    pipe.close()  # idempotent


def test_abandoned_pipeline_is_reaped_when_collected() -> None:
    pipe = AudioPipeline(resolve_output("mp3", None, 24000), 24000)
    pipe.feed(tone(440, seconds=0.2))
    pid = pipe.process_id
    del pipe
    gc.collect()
    assert pid not in _ffmpeg_children()


def test_finished_stream_leaves_no_process() -> None:
    before = set(_ffmpeg_children())
    run("opus", None, tone(440, seconds=0.3), 480)
    assert set(_ffmpeg_children()) <= before

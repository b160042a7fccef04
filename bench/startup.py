"""Startup time with N cloned voices: cold (latents computed) vs warm (latent cache), one run.

Starts the real gunicorn twice on the same cache folder and times process start to `/ready`
200. The voices are N different clips cut from the default voice (each with its own bytes, so
each has its own cache entry).

    .venv/bin/python bench/startup.py --voices 20 --xtts-dir /tmp/tiny
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.latencylib.client import get_json  # noqa: E402
from bench.latencylib.server import SpawnConfig, SpawnedServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_voices(folder: Path, count: int) -> None:
    """Write `count` 4-second clips cut from speakers/default.wav at different offsets."""
    audio, rate = soundfile.read(str(ROOT / "speakers" / "default.wav"), dtype="float32")
    length = 4 * rate
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        start = (i * rate // 3) % max(1, len(audio) - length)
        clip = audio[start:start + length] * (0.9 - i * 0.01)
        soundfile.write(str(folder / f"voice{i:02d}.wav"), clip, rate)


def time_to_ready(config: SpawnConfig, log: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    with SpawnedServer(config, log) as server:
        elapsed = time.perf_counter() - started
        _, health = get_json(server.target, "/health", timeout=5)
    return elapsed, health


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=20)
    parser.add_argument("--xtts-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_voices(work / "speakers", opts.voices)
        config = SpawnConfig(
            engine="xtts", xtts_dir=opts.xtts_dir, device=opts.device,
            extra_env={"VOXLINE_SPEAKERS_DIR": str(work / "speakers"),
                       "VOXLINE_CACHE_DIR": str(work / "cache")},
        )
        rows = []
        for label in ("cold", "warm"):
            seconds, health = time_to_ready(config, work / f"{label}.log")
            rows.append({"run": label, "seconds_to_ready": round(seconds, 2),
                         "computed": health["voices_computed"],
                         "cached": health["voices_cached"],
                         "server_startup_s": round(health["startup_s"], 2)})
    print(f"| run | process start → /ready (s) | in-server startup (s) | latents computed "
          f"| from cache |  ({opts.voices} voices, {opts.xtts_dir.name}, {opts.device})")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['seconds_to_ready']} | {r['server_startup_s']} "
              f"| {r['computed']} | {r['cached']} |")
    print(json.dumps(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

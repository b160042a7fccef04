"""Single-thread sentence-split rate: a pysbd segmenter made per call vs kept per thread."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import pysbd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server.test_text import corpus  # noqa: E402

_local = threading.local()


def per_call(text: str, code: str) -> list[str]:
    return pysbd.Segmenter(language=code, clean=False).segment(text)


def per_thread(text: str, code: str) -> list[str]:
    cache = _local.__dict__.setdefault("segmenters", {})
    if code not in cache:
        cache[code] = pysbd.Segmenter(language=code, clean=False)
    return cache[code].segment(text)


def construct_only(text: str, code: str) -> None:
    pysbd.Segmenter(language=code, clean=False)


def rate(split, items: list[tuple[str, str]], seconds: float) -> float:
    """Calls per second of `split` over `items`, repeated for about `seconds`."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for language, text in items:
            split(text, language.split("-")[0])
        done += len(items)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    items = corpus()
    figures = {
        name: rate(fn, items, args.seconds)
        for name, fn in [
            ("per_call", per_call),
            ("per_thread", per_thread),
            ("construct_only", construct_only),
        ]
    }
    for name, value in figures.items():
        print(f"{name:15s} {value:10.0f} /s  ({1e6 / value:7.1f} µs each)")
    print(f"per_thread / per_call = {figures['per_thread'] / figures['per_call']:.3f}")


if __name__ == "__main__":
    main()

"""Request send schedules: open-loop Poisson arrivals from a seeded generator."""

from __future__ import annotations

import random


def poisson_schedule(rate_per_s: float, count: int, seed: int) -> list[float]:
    """Return `count` send offsets (seconds from start, ascending) of a Poisson process.

    Inter-arrival gaps are exponential with mean 1/rate; the first request goes at its first
    gap, not at 0, so every gap is drawn the same way. The same seed gives the same schedule.
    """
    if rate_per_s <= 0:
        raise ValueError("rate must be positive")
    if count < 0:
        raise ValueError("count must be 0 or more")
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    for _ in range(count):
        t += rng.expovariate(rate_per_s)
        offsets.append(t)
    return offsets

"""Order statistics for latency samples: percentiles and the per-cell summary row."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Return the q-th percentile by linear interpolation (NumPy's default), None if empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    data = sorted(float(v) for v in values)
    if not data:
        return None
    if any(math.isnan(v) for v in data):
        raise ValueError("percentile of data containing NaN")
    rank = q / 100.0 * (len(data) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    frac = rank - low
    return data[low] + (data[high] - data[low]) * frac


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """Summarise samples as n, mean, p50, p95, p99 and max (None fields when empty)."""
    data = [float(v) for v in values]
    out: dict[str, float | int | None] = {"n": len(data)}
    out["mean"] = sum(data) / len(data) if data else None
    for q in PERCENTILES:
        out[f"p{q:g}"] = percentile(data, q)
    out["max"] = max(data) if data else None
    return out

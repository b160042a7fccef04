"""Poisson arrival schedules: deterministic per seed, ascending, with the asked-for rate."""

import math

import pytest
from latencylib.schedule import poisson_schedule


def test_same_seed_same_schedule_other_seed_other_schedule():
    assert poisson_schedule(2.0, 50, seed=7) == poisson_schedule(2.0, 50, seed=7)
    assert poisson_schedule(2.0, 50, seed=7) != poisson_schedule(2.0, 50, seed=8)


def test_offsets_are_positive_and_strictly_ascending():
    offsets = poisson_schedule(5.0, 200, seed=1)
    assert len(offsets) == 200
    assert offsets[0] > 0
    assert all(b > a for a, b in zip(offsets, offsets[1:], strict=False))


def test_mean_gap_and_spread_match_an_exponential_distribution():
    rate, n = 4.0, 20000
    offsets = poisson_schedule(rate, n, seed=42)
    gaps = [offsets[0]] + [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    mean = sum(gaps) / n
    var = sum((g - mean) ** 2 for g in gaps) / (n - 1)
    # Exponential: mean = sd = 1/rate. 20000 samples put the standard error near 0.7 %.
    assert mean == pytest.approx(1 / rate, rel=0.03)
    assert math.sqrt(var) == pytest.approx(1 / rate, rel=0.05)
    # Memorylessness in one number: P(gap > mean) = e^-1.
    assert sum(g > 1 / rate for g in gaps) / n == pytest.approx(math.exp(-1), abs=0.02)


def test_counts_in_unit_windows_have_poisson_mean_and_variance():
    rate = 3.0
    offsets = poisson_schedule(rate, 30000, seed=3)
    windows = int(offsets[-1])
    counts = [0] * windows
    for t in offsets:
        if int(t) < windows:
            counts[int(t)] += 1
    mean = sum(counts) / windows
    var = sum((c - mean) ** 2 for c in counts) / (windows - 1)
    assert mean == pytest.approx(rate, rel=0.05)
    assert var == pytest.approx(rate, rel=0.1)


def test_bad_arguments_and_empty_schedule():
    assert poisson_schedule(1.0, 0, seed=0) == []
    with pytest.raises(ValueError):
        poisson_schedule(0.0, 5, seed=0)
    with pytest.raises(ValueError):
        poisson_schedule(1.0, -1, seed=0)

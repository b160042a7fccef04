"""Percentiles and summaries on data with known answers."""

import pytest
from latencylib.stats import describe, percentile


def test_percentile_interpolates_linearly_like_numpy():
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == 2.5
    # rank 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3)
    assert percentile(data, 95) == pytest.approx(3.85)


def test_percentile_ignores_input_order():
    assert percentile([10, 1, 7, 3, 5], 50) == 5
    assert percentile([10, 1, 7, 3, 5], 25) == 3


def test_percentile_of_one_sample_is_that_sample():
    for q in (0, 50, 99, 100):
        assert percentile([0.125], q) == 0.125


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0, float("nan")], 50)


def test_percentile_of_1_to_100():
    data = list(range(1, 101))
    assert percentile(data, 50) == 50.5
    assert percentile(data, 99) == pytest.approx(99.01)


def test_describe_reports_count_mean_percentiles_max():
    s = describe([4.0, 1.0, 3.0, 2.0])
    assert s == {
        "n": 4,
        "mean": 2.5,
        "p50": 2.5,
        "p95": pytest.approx(3.85),
        "p99": pytest.approx(3.97),
        "max": 4.0,
    }


def test_describe_empty():
    assert describe([]) == {
        "n": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
    }

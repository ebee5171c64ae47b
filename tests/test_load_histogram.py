"""The load tool's log-linear histogram: percentiles within 1% of the exact ones, merging."""

from __future__ import annotations

import functools
import math
import random

import pytest

from qactuar.load.histogram import BUCKET_COUNT, Histogram, bucket_bounds, bucket_of


def exact_percentile(ordered: list[int], percent: float) -> int:
    """Nearest rank, as the histogram defines it."""
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return ordered[rank - 1]


@functools.cache
def recorded(count: int, seed: int) -> tuple[list[int], Histogram]:
    """The sorted synthetic sample and a histogram of it (made once per test session)."""
    values = synthetic_latencies(count, seed)
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    return sorted(values), histogram


def synthetic_latencies(count: int, seed: int) -> list[int]:
    """Log-normal latencies around 1 ms with a long tail (nanoseconds), plus a few tiny
    and huge values at the edges of the range."""
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(math.log(1e6), 1.2)) for _ in range(count)]
    return [*values, 0, 1, 127, 128, 255, 10**12, 2**45]


@pytest.mark.parametrize("percent", [1, 10, 50, 75, 90, 99, 99.9, 99.99])
def test_percentiles_within_one_percent_of_exact(percent: float) -> None:
    ordered, histogram = recorded(200_000, 7)
    exact = exact_percentile(ordered, percent)
    measured = histogram.percentile(percent)
    assert abs(measured - exact) <= 0.01 * exact, (percent, measured, exact)


def test_every_bucket_is_narrower_than_one_percent_of_its_values() -> None:
    for index in range(BUCKET_COUNT - 1):
        low, width = bucket_bounds(index)
        assert bucket_of(low) == index and bucket_of(low + width - 1) == index
        assert bucket_of(low + width) == index + 1
        middle = low + (width - 1) // 2
        assert (middle - low) <= 0.01 * max(low, 1) and (low + width - 1 - middle) <= 0.01 * max(
            low + width - 1, 1)


def test_exact_count_sum_min_max_and_stdev() -> None:
    values = synthetic_latencies(5_000, seed=3)
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    assert histogram.count == len(values)
    assert histogram.minimum == min(values) and histogram.maximum == max(values)
    assert histogram.percentile(100) == max(values)
    mean = sum(values) / len(values)
    assert histogram.mean() == pytest.approx(mean)
    assert histogram.stdev() == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), rel=1e-6)


def test_merged_histograms_equal_one_histogram_of_both() -> None:
    first, second = synthetic_latencies(20_000, 1), synthetic_latencies(30_000, 2)
    one, other, both = Histogram(), Histogram(), Histogram()
    for value in first:
        one.record(value)
        both.record(value)
    for value in second:
        other.record(value)
        both.record(value)
    one.merge(other)
    assert one.to_dict() == both.to_dict()
    assert Histogram.from_dict(both.to_dict()).to_dict() == both.to_dict()


def test_memory_is_bounded() -> None:
    histogram = Histogram()
    for value in synthetic_latencies(10_000, 5):
        histogram.record(value)
    assert len(histogram.counts) == BUCKET_COUNT < 2500


def test_a_damaged_histogram_is_refused() -> None:
    data = Histogram().to_dict()
    data["count"] = 3
    with pytest.raises(ValueError):
        Histogram.from_dict(data)
    with pytest.raises(ValueError):
        Histogram.from_dict({**data, "schema": "other"})

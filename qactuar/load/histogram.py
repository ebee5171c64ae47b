# cython: annotation_typing=False
"""A log-linear latency histogram: bounded memory, at most 1% error, mergeable.

Values are non-negative integers (nanoseconds here).  Values below 128 have a
bucket each; above that every power of two is split into 64 equal buckets, so a
bucket is never wider than 1/64 of its lowest value and the bucket's midpoint is
within 1/128 (0.78%) of any value in it.  Values up to 2**40 ns (about 18
minutes) fit in 2,304 counters; larger ones land in the last bucket (the exact
maximum is kept beside).  Two histograms merge by adding their counters, so
workers' and runs' histograms combine exactly as if one had seen every value.
This module knows nothing of requests or time.
"""

from __future__ import annotations

from typing import Any

SUB_BUCKETS = 64  # buckets per power of two above the exact range
EXACT_LIMIT = 2 * SUB_BUCKETS  # values below this have a bucket each
MAX_SHIFT = 34  # 2**(34 + 7) - 1 is the largest value with a bucket of its own
BUCKET_COUNT = (MAX_SHIFT + 2) * SUB_BUCKETS
SCHEMA = "log-linear/64"
PENDING_LIMIT = 2**32  # values below this are summed in 64-bit counters first
PENDING_ROOM = 2**64 - 1


def bucket_of(value: int) -> int:
    """The index of the bucket that counts `value`."""
    if value < EXACT_LIMIT:
        return value if value > 0 else 0
    shift = value.bit_length() - 7
    if shift > MAX_SHIFT:
        return BUCKET_COUNT - 1
    return (shift << 6) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest value counted by bucket `index` and the bucket's width."""
    if index < EXACT_LIMIT:
        return index, 1
    shift = (index >> 6) - 1
    return (index - (shift << 6)) << shift, 1 << shift


class Histogram:
    """Counts of values per bucket, with the exact count, sum, sum of squares, min and max."""

    def __init__(self) -> None:
        self.counts = [0] * BUCKET_COUNT
        self.count = 0
        # The sums are exact Python ints, but `record` adds values below 2**32 to two
        # 64-bit C counters first (when compiled), folded in before they could overflow:
        # no Python int arithmetic per value.  `total` and `total_squares` add both.
        self._total = 0
        self._squares = 0
        self._pending_total = 0
        self._pending_squares = 0
        self.minimum = 0
        self.maximum = 0

    @property
    def total(self) -> int:
        """The exact sum of the values."""
        return self._total + self._pending_total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value
        self._pending_total = 0

    @property
    def total_squares(self) -> int:
        """The exact sum of the values' squares."""
        return self._squares + self._pending_squares

    @total_squares.setter
    def total_squares(self, value: int) -> None:
        self._squares = value
        self._pending_squares = 0

    def _fold(self) -> None:
        self._total += self._pending_total
        self._squares += self._pending_squares
        self._pending_total = self._pending_squares = 0

    def record(self, value: int) -> None:
        """Count one value (negative values count as 0)."""
        if value < 0:
            value = 0
        if value < EXACT_LIMIT:
            index = value
        else:
            # the bit length less 7, without int.bit_length (a C loop when compiled)
            shift = 0
            rest = value >> 7
            while rest:
                rest >>= 1
                shift += 1
            index = BUCKET_COUNT - 1 if shift > MAX_SHIFT else (shift << 6) + (value >> shift)
        self.counts[index] += 1
        if self.count == 0 or value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        self.count += 1
        if value < PENDING_LIMIT:
            square = value * value  # below 2**64
            # pending_total <= pending_squares (a value's square is at least the value)
            if square > PENDING_ROOM - self._pending_squares:
                self._fold()
            self._pending_total += value
            self._pending_squares += square
        else:
            self._total += value
            big = value  # a Python int when compiled: this square outgrows 64 bits
            self._squares += big * big

    def clear(self) -> None:
        """Forget every value (the counters are reused)."""
        counts = self.counts
        for index in range(BUCKET_COUNT):
            counts[index] = 0
        self.count = self.total = self.total_squares = self.minimum = self.maximum = 0

    def copy(self) -> Histogram:
        other = Histogram()
        other.counts = list(self.counts)
        other.count, other.total, other.total_squares = self.count, self.total, self.total_squares
        other.minimum, other.maximum = self.minimum, self.maximum
        return other

    def since(self, earlier: Histogram) -> Histogram:
        """The values recorded after `earlier` was copied from this histogram (their exact
        minimum and maximum are not known: the bucket bounds stand in for them)."""
        newer = Histogram()
        newer.count = self.count - earlier.count
        newer.total = self.total - earlier.total
        newer.total_squares = self.total_squares - earlier.total_squares
        lowest = highest = -1
        for index, (now, before) in enumerate(zip(self.counts, earlier.counts, strict=True)):
            if now != before:
                newer.counts[index] = now - before
                if lowest < 0:
                    lowest = index
                highest = index
        if lowest >= 0:
            newer.minimum = max(bucket_bounds(lowest)[0], self.minimum)
            low, width = bucket_bounds(highest)
            newer.maximum = min(low + width - 1, self.maximum)
        return newer

    def merge(self, other: Histogram) -> None:
        """Add `other`'s values to this histogram."""
        if other.count == 0:
            return
        counts = self.counts
        for index, count in enumerate(other.counts):
            if count:
                counts[index] += count
        self.minimum = other.minimum if self.count == 0 else min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.count += other.count
        self.total += other.total
        self.total_squares += other.total_squares

    def percentile(self, percent: float) -> int:
        """The value at `percent` (0-100) by nearest rank, within 1% (0 when empty)."""
        if self.count == 0:
            return 0
        rank = max(1, -(-self.count * percent // 100))  # ceil, at least the first value
        if rank >= self.count:
            return self.maximum
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                low, width = bucket_bounds(index)
                middle = low + (width - 1) // 2
                return min(max(middle, self.minimum), self.maximum)
        return self.maximum

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def stdev(self) -> float:
        """The population standard deviation of the values."""
        if self.count < 2:
            return 0.0
        mean = self.total / self.count
        variance = self.total_squares / self.count - mean * mean
        return variance ** 0.5 if variance > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the counters that are not zero, by bucket index."""
        return {"schema": SCHEMA, "count": self.count, "sum": self.total,
                "sum_squares": self.total_squares, "min": self.minimum, "max": self.maximum,
                "buckets": {str(index): count for index, count in enumerate(self.counts)
                            if count}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        """The histogram `to_dict` described; ValueError for another layout."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"histogram schema {data.get('schema')!r}, expected {SCHEMA!r}")
        histogram = cls()
        for index, count in data["buckets"].items():
            position = int(index)
            if not 0 <= position < BUCKET_COUNT or int(count) < 0:
                raise ValueError(f"histogram bucket {index}={count} out of range")
            histogram.counts[position] = int(count)
        histogram.count = int(data["count"])
        histogram.total = int(data["sum"])
        histogram.total_squares = int(data["sum_squares"])
        histogram.minimum = int(data["min"])
        histogram.maximum = int(data["max"])
        if sum(histogram.counts) != histogram.count:
            raise ValueError("histogram buckets do not add up to its count")
        return histogram

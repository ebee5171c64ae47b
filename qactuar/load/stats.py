# cython: annotation_typing=False
"""What one run (or one worker of it) has counted: requests by outcome, latency, traffic.

The engines call `answered` and `errored` once per request; a request counts
only when it started (was due) at or after `measure_from_ns`, so requests of
the warm-up neither count nor skew the invariant started = succeeded + failed
+ errored.  `RunStats` also keeps a per-second series (closed by the runner's
one-second tick, from the difference of the latency histogram since the last
tick: one record per request, not two) and, when asked for, a row per request for `--csv`.  It is
turned into a plain dict for JSON, the workers' pipe and `merge`.
"""

from __future__ import annotations

from typing import Any

from qactuar.load.histogram import Histogram

ERROR_KINDS = ("connect", "timeout", "reset", "protocol", "unfinished")
STATS_SCHEMA = 1


class RunStats:
    """Counters of one run; merged across workers with `merge`."""

    def __init__(self, keep_rows: bool = False) -> None:
        self.measure_from_ns = 0
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.errored = 0
        self.status_classes = [0, 0, 0, 0, 0, 0]  # index status // 100
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.bytes_total = 0
        self.bytes_headers = 0
        self.bytes_data = 0
        self.latency = Histogram()
        self.second_start = Histogram()  # `latency` as it was when this second began
        self.second_errors = 0
        self.series: list[dict[str, Any]] = []
        self.connect_ns: list[int] = []
        self.first_byte_ns: list[int] = []
        self.late = 0  # --rate: requests sent more than LATE_NS after they were due
        self.unsent = 0  # --rate: requests due but never sent before the end
        self.rows: list[tuple[int, int, int, int, str]] | None = [] if keep_rows else None
        self.duration_s = 0.0
        self.cpu_s = 0.0
        self.connections_per_worker: list[float] = []  # req/s of each connection

    def start(self, start_ns: int) -> bool:
        """Count a request started at `start_ns`; whether it is measured."""
        if start_ns < self.measure_from_ns:
            return False
        self.started += 1
        return True

    def answered(self, start_ns: int, end_ns: int, status: int, head_bytes: int,
                 body_bytes: int) -> None:
        if start_ns < self.measure_from_ns:
            return
        latency = end_ns - start_ns
        if status < 400:
            self.succeeded += 1
        else:
            self.failed += 1
        self.status_classes[status // 100 if status < 600 else 0] += 1
        self.bytes_headers += head_bytes
        self.bytes_data += body_bytes
        self.bytes_total += head_bytes + body_bytes
        self.latency.record(latency)
        if self.rows is not None:
            self.rows.append((start_ns, status, latency, head_bytes + body_bytes, ""))

    def errored_request(self, start_ns: int, end_ns: int, kind: str) -> None:
        if start_ns < self.measure_from_ns:
            return
        self.errored += 1
        self.second_errors += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.rows is not None:
            self.rows.append((start_ns, 0, end_ns - start_ns, 0, kind))

    def close_second(self, second: int) -> None:
        """End the per-second series' entry for `second` (from the measurement's start)."""
        histogram = self.latency.since(self.second_start)
        self.series.append({"second": second, "requests": histogram.count,
                            "errors": self.second_errors,
                            "p50_ns": histogram.percentile(50),
                            "p90_ns": histogram.percentile(90),
                            "p99_ns": histogram.percentile(99), "max_ns": histogram.maximum})
        self.second_start = self.latency.copy()
        self.second_errors = 0

    def done(self) -> int:
        return self.succeeded + self.failed + self.errored

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "succeeded": self.succeeded, "failed": self.failed,
                "errored": self.errored, "status_classes": list(self.status_classes),
                "errors": dict(self.errors), "bytes_total": self.bytes_total,
                "bytes_headers": self.bytes_headers, "bytes_data": self.bytes_data,
                "latency": self.latency.to_dict(), "series": self.series,
                "connect_ns": self.connect_ns, "first_byte_ns": self.first_byte_ns,
                "late": self.late, "unsent": self.unsent, "duration_s": self.duration_s,
                "cpu_s": self.cpu_s, "connection_rates": self.connections_per_worker}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStats:
        stats = cls()
        for name in ("started", "succeeded", "failed", "errored", "bytes_total",
                     "bytes_headers", "bytes_data", "late", "unsent"):
            setattr(stats, name, int(data[name]))
        stats.status_classes = [int(count) for count in data["status_classes"]]
        stats.errors.update({kind: int(count) for kind, count in data["errors"].items()})
        stats.latency = Histogram.from_dict(data["latency"])
        stats.series = list(data["series"])
        stats.connect_ns = [int(v) for v in data["connect_ns"]]
        stats.first_byte_ns = [int(v) for v in data["first_byte_ns"]]
        stats.duration_s = float(data["duration_s"])
        stats.cpu_s = float(data["cpu_s"])
        stats.connections_per_worker = [float(v) for v in data["connection_rates"]]
        return stats

    def merge(self, other: RunStats, concurrent: bool = True) -> None:
        """Add `other`'s counts.  `concurrent`: the two ran at the same time (workers of
        one run: durations overlap, per-second series add up by second); otherwise
        (separate runs) the durations add up and the series are concatenated."""
        for name in ("started", "succeeded", "failed", "errored", "bytes_total",
                     "bytes_headers", "bytes_data", "late", "unsent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.status_classes = [a + b for a, b in zip(self.status_classes,
                                                     other.status_classes, strict=True)]
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.latency.merge(other.latency)
        self.connect_ns += other.connect_ns
        self.first_byte_ns += other.first_byte_ns
        self.cpu_s += other.cpu_s
        self.connections_per_worker += other.connections_per_worker
        if concurrent:
            self.duration_s = max(self.duration_s, other.duration_s)
            self.series = _merge_series(self.series, other.series)
        else:
            offset = len(self.series)
            self.duration_s += other.duration_s
            self.series = self.series + [{**entry, "second": entry["second"] + offset}
                                         for entry in other.series]


def _merge_series(first: list[dict[str, Any]], second: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Per-second entries of two concurrent workers: counts add, percentiles take the
    worse of the two (the exact merged percentile needs the seconds' histograms)."""
    by_second = {entry["second"]: dict(entry) for entry in first}
    for entry in second:
        mine = by_second.get(entry["second"])
        if mine is None:
            by_second[entry["second"]] = dict(entry)
            continue
        mine["requests"] += entry["requests"]
        mine["errors"] += entry["errors"]
        for key in ("p50_ns", "p90_ns", "p99_ns", "max_ns"):
            mine[key] = max(mine[key], entry[key])
    return [by_second[key] for key in sorted(by_second)]

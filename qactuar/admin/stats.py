"""One process's request counters, and how snapshots of several processes add up.

Compiled with the hot path (`_build.COMPILED_MODULES`, layout in stats.pxd).

The HTTP stream calls `ProcessStats.record` once per finished response (only when
the admin plane is on): it bumps plain list items and integers, nothing else.
Everything else (snapshots, sums, Prometheus text) happens when someone asks.
A snapshot is a plain JSON-able dict, so it crosses a pipe between processes.
"""

from __future__ import annotations

import time
from typing import Any

# Upper bounds (seconds) of the request duration histogram; one more bucket for +Inf.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The protocols responses are counted under, and the index base of each in `responses`.
PROTOCOLS = ("http/1.1", "http/2", "http/3")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_H2_BASE = 6  # responses[status // 100] for HTTP/1.x, responses[6 + status // 100] for h2
_H3_BASE = 12  # ... and responses[12 + status // 100] for HTTP/3 (QUIC_BIND)

_monotonic = time.monotonic


class ProcessStats:
    """Counters of one serving process, bumped on the hot path."""

    __slots__ = ("buckets", "bytes_in", "bytes_out", "duration_sum", "responses")

    def __init__(self) -> None:
        # Literal lists of fixed size: C arrays when compiled (stats.pxd: 18 and 14).
        self.responses = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # 3 * _H2_BASE
        self.buckets = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # len(DURATION_BUCKETS) + 1
        self.duration_sum = 0.0
        self.bytes_in = 0  # request body bytes
        self.bytes_out = 0  # response body bytes

    def record(self, status: Any, http_version: str, sent: Any, started_at: float) -> None:
        """One response finished (sent or cut off): count it, its duration and body.

        `status` and `sent` are ints (typed `Any`: Cython reads `int` as an exact type).
        """
        duration = _monotonic() - started_at
        index = status // 100
        if index < 1 or index > 5:
            index = 5
        if http_version == "2":
            index += _H2_BASE
        elif http_version == "3":
            index += _H3_BASE
        self.responses[index] += 1
        # Most responses fall in the first buckets: a forward scan beats a bisection.
        bucket = 0
        for bound in DURATION_BUCKETS:
            if duration <= bound:
                break
            bucket += 1
        self.buckets[bucket] += 1
        self.duration_sum += duration
        self.bytes_out += sent

    def snapshot(self) -> dict[str, Any]:
        """The counters as a plain dict (see `empty_snapshot` for its shape)."""
        requests = {}
        responses = list(self.responses)
        for base, protocol in zip((0, _H2_BASE, _H3_BASE), PROTOCOLS, strict=True):
            for offset, status_class in enumerate(STATUS_CLASSES, start=1):
                requests[f"{protocol} {status_class}"] = responses[base + offset]
        return {"requests": requests, "buckets": list(self.buckets),
                "duration_sum": self.duration_sum, "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out}


def empty_snapshot() -> dict[str, Any]:
    return ProcessStats().snapshot()


def requests_served(snapshot: dict[str, Any]) -> int:
    return sum(snapshot["requests"].values())


def add_snapshots(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """`total` plus `more`, field by field (a new dict; neither argument changes)."""
    return {
        "requests": {key: total["requests"].get(key, 0) + more["requests"].get(key, 0)
                     for key in {**total["requests"], **more["requests"]}},
        "buckets": [a + b for a, b in zip(total["buckets"], more["buckets"], strict=True)],
        "duration_sum": total["duration_sum"] + more["duration_sum"],
        "bytes_in": total["bytes_in"] + more["bytes_in"],
        "bytes_out": total["bytes_out"] + more["bytes_out"],
    }


def percentile(snapshot: dict[str, Any], fraction: float) -> float | None:
    """The upper bound of the bucket holding the `fraction` quantile (None: no requests)."""
    count = sum(snapshot["buckets"])
    if not count:
        return None
    rank = fraction * count
    seen = 0
    for bound, in_bucket in zip((*DURATION_BUCKETS, float("inf")), snapshot["buckets"],
                                strict=True):
        seen += in_bucket
        if seen >= rank:
            return bound
    return float("inf")

"""`--fail-if` conditions: 'p99>50ms', 'errors>1%', 'rps<1000' ... checked against a run.

A condition is METRIC OP VALUE.  Metrics: p50, p90, p99, p99.9, max, mean
(latency, with a unit: us, ms, s), errors and failed (a count, or a share
of the requests done with %), rps (requests per second), late and unsent
(`--rate`).  `parse_conditions` raises the options' UsageError for a bad one.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from qactuar.load.stats import RunStats

_CONDITION = re.compile(r"^\s*([a-z0-9.]+)\s*(>=|<=|==|>|<)\s*([\d.]+)\s*(us|ms|s|%)?\s*$")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq}
_LATENCY = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0, "mean": -1.0}
_COUNTS = ("errors", "failed", "late", "unsent")
_TIME_UNITS = {"us": 1e3, "ms": 1e6, "s": 1e9}


@dataclass(frozen=True)
class Condition:
    text: str
    metric: str
    compare: Callable[[float, float], bool]
    value: float  # nanoseconds for latencies, a fraction for %, else as written
    share: bool  # a share of the requests done (%)


def parse_conditions(texts: list[str]) -> list[Condition]:
    from qactuar.load.options import UsageError

    conditions = []
    for text in texts:
        match = _CONDITION.match(text.lower())
        if match is None:
            raise UsageError(f"--fail-if {text!r}: expected METRIC OP VALUE, e.g. 'p99>50ms'")
        metric, op, number, unit = match.groups()
        try:
            value = float(number)
        except ValueError:
            raise UsageError(f"--fail-if {text!r}: {number!r} is not a number") from None
        if metric in _LATENCY:
            if unit not in _TIME_UNITS:
                raise UsageError(f"--fail-if {text!r}: a latency needs a unit (us, ms, s)")
            conditions.append(Condition(text, metric, _OPERATORS[op],
                                        value * _TIME_UNITS[unit], False))
        elif metric in _COUNTS or metric == "rps":
            if unit not in (None, "%") or (metric == "rps" and unit):
                raise UsageError(f"--fail-if {text!r}: {metric} takes a number"
                                 f"{'' if metric == 'rps' else ' or a %'}")
            conditions.append(Condition(text, metric, _OPERATORS[op],
                                        value / 100 if unit else value, unit == "%"))
        else:
            raise UsageError(f"--fail-if {text!r}: unknown metric {metric!r} (p50, p90, p99, "
                             "p99.9, max, mean, errors, failed, late, unsent, rps)")
    return conditions


def measured(condition: Condition, stats: RunStats) -> float:
    metric = condition.metric
    if metric in _LATENCY:
        percent = _LATENCY[metric]
        if percent < 0:
            return stats.latency.mean()
        return float(stats.latency.percentile(percent))
    if metric == "rps":
        return stats.done() / stats.duration_s if stats.duration_s else 0.0
    count = {"errors": stats.errored, "failed": stats.failed, "late": stats.late,
             "unsent": stats.unsent}[metric]
    if condition.share:
        return count / stats.done() if stats.done() else 0.0
    return float(count)


def failing(texts: list[str], stats: RunStats) -> list[str]:
    """The conditions that hold for `stats` (each makes the exit status 1)."""
    return [condition.text for condition in parse_conditions(texts)
            if condition.compare(measured(condition, stats), condition.value)]

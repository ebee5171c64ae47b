"""The text report of a run: h2load's lines, then percentiles and the tool's own CPU.

`format_report` turns merged `RunStats` into what `qactuar load` prints;
`progress_line` is the one-second line shown on a terminal.  Pure formatting:
no I/O here, no decisions about the exit status.
"""

from __future__ import annotations

from qactuar.load.histogram import Histogram
from qactuar.load.stats import ERROR_KINDS, RunStats

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
BUSY_CORE_SHARE = 0.9  # above this share of a core per worker, the tool may be the limit


def format_time(ns: float) -> str:
    """A duration the way h2load prints it: us, ms or s with two decimals."""
    if ns < 1_000_000:
        return f"{ns / 1e3:.2f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f}ms"
    return f"{ns / 1e9:.2f}s"


def format_bytes(count: float) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return f"{count:.0f}B"


def percentile_label(percent: float) -> str:
    return f"p{percent:g}"


def _list_row(name: str, values: list[float], unit_is_time: bool = True) -> str:
    if not values:
        return f"{name}: {'-':>10} {'-':>10} {'-':>10} {'-':>10}"
    count = len(values)
    mean = sum(values) / count
    sd = (sum((v - mean) ** 2 for v in values) / count) ** 0.5
    within = sum(1 for v in values if abs(v - mean) <= sd) / count * 100
    show = format_time if unit_is_time else (lambda v: f"{v:.2f}")
    return (f"{name}: {show(min(values)):>10} {show(max(values)):>10} {show(mean):>10} "
            f"{show(sd):>10} {within:>8.2f}%")


def _histogram_row(name: str, histogram: Histogram) -> str:
    if histogram.count == 0:
        return f"{name}: {'-':>10} {'-':>10} {'-':>10} {'-':>10}"
    return (f"{name}: {format_time(histogram.minimum):>10} {format_time(histogram.maximum):>10}"
            f" {format_time(histogram.mean()):>10} {format_time(histogram.stdev()):>10}")


def format_report(stats: RunStats, total: int | None, workers: int, rate: float | None,
                  protocol: str, interrupted: bool = False) -> str:
    """The report printed at the end of a run (or on Ctrl-C, of the run so far)."""
    seconds = stats.duration_s or 1e-9
    done = stats.done()
    per_second = done / seconds
    lines = []
    if interrupted:
        lines.append("interrupted: the report covers the run so far")
    lines.append(f"finished in {seconds:.2f}s, {per_second:.2f} req/s, "
                 f"{format_bytes(stats.bytes_total / seconds)}/s")
    lines.append(f"requests: {total if total is not None else stats.started} total, "
                 f"{stats.started} started, {done} done, {stats.succeeded} succeeded, "
                 f"{stats.failed} failed, {stats.errored} errored, "
                 f"{stats.errors.get('timeout', 0)} timeout")
    classes = stats.status_classes
    if protocol == "ws":
        lines.append(f"messages: {stats.succeeded} echoed (round trips after the upgrade)")
    else:
        lines.append(f"status codes: {classes[2]} 2xx, {classes[3]} 3xx, {classes[4]} 4xx, "
                     f"{classes[5]} 5xx")
    lines.append(f"traffic: {format_bytes(stats.bytes_total)} ({stats.bytes_total}) total, "
                 f"{format_bytes(stats.bytes_headers)} ({stats.bytes_headers}) headers, "
                 f"{format_bytes(stats.bytes_data)} ({stats.bytes_data}) data")
    kinds = list(ERROR_KINDS) + [kind for kind in stats.errors if kind not in ERROR_KINDS]
    lines.append("errors: " + ", ".join(f"{stats.errors.get(kind, 0)} {kind}"
                                         for kind in kinds))
    what = "message" if protocol == "ws" else "request"
    lines.append(f"{'':18}{'min':>10} {'max':>10} {'mean':>10} {'sd':>10} {'+/- sd':>9}")
    lines.append(_histogram_row(f"time for {what}", stats.latency).replace(
        "time for message:", "time for message:"))
    lines.append(_list_row("time for connect", [float(v) for v in stats.connect_ns]))
    lines.append(_list_row("time to 1st byte", [float(v) for v in stats.first_byte_ns]))
    lines.append(_list_row("req/s           ", stats.connections_per_worker, False))
    latency = stats.latency
    lines.append("latency: " + ", ".join(
        f"{percentile_label(p)} {format_time(latency.percentile(p))}" for p in PERCENTILES)
        + f", max {format_time(latency.maximum)}")
    if rate is not None:
        lines.append(f"rate: {rate:g} req/s asked, {stats.started / seconds:.2f} req/s sent, "
                     f"{stats.late} late (waited for a free connection), "
                     f"{stats.unsent} unsent")
    per_cpu = done / stats.cpu_s if stats.cpu_s > 0 else 0.0
    share = stats.cpu_s / (seconds * workers)
    lines.append(f"tool CPU: {stats.cpu_s:.2f}s in {workers} process"
                 f"{'es' if workers > 1 else ''} ({share * 100:.0f}% of a core each), "
                 f"{per_cpu:,.0f} {what}s per CPU-second")
    if share >= BUSY_CORE_SHARE:
        lines.append(f"warning: the tool used {share * 100:.0f}% of a core per process: it may "
                     "be the bottleneck (add -t, or give it a core of its own)")
    return "\n".join(lines)


def progress_line(stats: RunStats, second: int) -> str:
    """One line for a terminal, rewritten each second."""
    last = stats.series[-1] if stats.series else {"requests": 0, "p99_ns": 0}
    return (f"[{second:>4}s] {stats.done():,} done, {last['requests']:,} req/s, "
            f"p99 {format_time(last['p99_ns'])}, {stats.errored:,} errors")

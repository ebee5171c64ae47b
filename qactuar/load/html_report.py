"""`--html FILE`: one self-contained page of a run's results, for people who would rather look.

The charts are inline SVG drawn here, in Python: the page has no script, no
style sheet, font or image from elsewhere, so opening it sends no request
anywhere (a report may be read on a machine without network, or mailed).
Three charts: requests (and errors) per second, the p50/p90/p99 latency of
each second, and the latency histogram (log scale of time); above them the
summary figures of the text report.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from qactuar import __version__
from qactuar.load.histogram import BUCKET_COUNT, bucket_bounds
from qactuar.load.report import PERCENTILES, format_bytes, format_time, percentile_label
from qactuar.load.stats import ERROR_KINDS, RunStats

WIDTH, HEIGHT = 760, 240  # the drawing area of each chart, in SVG units
LEFT, BOTTOM, TOP, RIGHT = 70, 30, 12, 16  # margins for the axes' labels
HISTOGRAM_BINS = 48
COLOURS = {"requests": "#2563eb", "errors": "#dc2626", "p50": "#16a34a", "p90": "#ca8a04",
           "p99": "#dc2626", "bars": "#7c3aed"}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>qactuar load: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; }}
td, th {{ padding: 2px 12px 2px 0; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
svg {{ background: #fafafa; border: 1px solid #ddd; display: block; margin: 6px 0 24px; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #444; }}
.legend span {{ margin-right: 14px; }}
</style>
</head>
<body>
<h1>qactuar load</h1>
<p>{title}</p>
{summary}
<h2>Requests per second</h2>
{legend_rate}
{rate_chart}
<h2>Latency per second (p50, p90, p99)</h2>
{legend_latency}
{latency_chart}
<h2>Latency histogram</h2>
{histogram_chart}
<p><small>{tool}</small></p>
</body>
</html>
"""


def write_html(path: Path, stats: RunStats, run: dict[str, Any]) -> None:
    path.write_text(render_html(stats, run), encoding="utf-8")


def render_html(stats: RunStats, run: dict[str, Any]) -> str:
    """The whole page."""
    urls = ", ".join(str(url) for url in run.get("urls") or ())
    title = (f"{urls} ({run.get('protocol', '?')}, {run.get('connections', '?')} connections)"
             + (", interrupted" if run.get("interrupted") else ""))
    series = stats.series
    seconds = [float(entry["second"]) for entry in series]
    rated = per_second_rates(stats)
    rate_chart = line_chart("requests-chart", [float(entry["second"]) for entry, _ in rated], {
        "requests": [entry["requests"] / covered for entry, covered in rated],
        "errors": [entry["errors"] / covered for entry, covered in rated]}, "req/s", str)
    latency_chart = line_chart("latency-chart", seconds, {
        name: [entry[f"{name}_ns"] / 1e6 for entry in series]
        for name in ("p50", "p90", "p99")}, "ms", _ms)
    return _PAGE.format(
        title=html.escape(title), summary=summary_table(stats),
        legend_rate=legend(("requests", "errors")),
        legend_latency=legend(("p50", "p90", "p99")),
        rate_chart=rate_chart, latency_chart=latency_chart,
        histogram_chart=histogram_chart(stats),
        tool=html.escape(f"qactuar load {__version__}"))


def per_second_rates(stats: RunStats) -> list[tuple[dict[str, Any], float]]:
    """Each second of the series with the share of a second it covers: the run's last
    entry is usually a part of one (its count alone would show as a drop at the end).
    A last part shorter than a quarter of a second is left out when there are others."""
    rated = []
    for entry in stats.series:
        covered = min(1.0, max(stats.duration_s - entry["second"], 0.001))
        rated.append((entry, covered))
    if len(rated) > 1 and rated[-1][1] < 0.25:
        rated.pop()
    return rated


def _ms(value: float) -> str:
    return f"{value:.3g}ms"


def legend(names: tuple[str, ...]) -> str:
    return '<p class="legend">' + "".join(
        f'<span style="color:{COLOURS[name]}">&#9632; {name}</span>' for name in names) + "</p>"


def summary_table(stats: RunStats) -> str:
    seconds = stats.duration_s or 1e-9
    latency = stats.latency
    rows = [
        ("duration", f"{stats.duration_s:.2f}s"),
        ("requests per second", f"{stats.done() / seconds:,.2f}"),
        ("started / succeeded / failed / errored",
         f"{stats.started} / {stats.succeeded} / {stats.failed} / {stats.errored}"),
        ("status codes", ", ".join(f"{count} {klass}xx" for klass, count
                                   in enumerate(stats.status_classes) if klass and count)
         or "-"),
        ("errors", ", ".join(f"{stats.errors.get(kind, 0)} {kind}" for kind in ERROR_KINDS)),
        ("traffic", format_bytes(stats.bytes_total)),
        ("latency", ", ".join(f"{percentile_label(p)} {format_time(latency.percentile(p))}"
                              for p in PERCENTILES) + f", max {format_time(latency.maximum)}"),
        ("tool CPU", f"{stats.cpu_s:.2f}s, "
         f"{stats.done() / stats.cpu_s if stats.cpu_s else 0:,.0f} requests per CPU-second"),
    ]
    cells = "".join(f'<tr><th>{html.escape(name)}</th><td class="n">{html.escape(value)}</td>'
                    "</tr>" for name, value in rows)
    return f'<table id="summary">{cells}</table>'


def _nice_top(value: float) -> float:
    """A round number at or above `value` for an axis' top."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _frame(chart_id: str, top: float, label: Any, x_labels: list[tuple[float, str]],
           body: str) -> str:
    """The SVG element: the y axis from 0 to `top`, x labels at their positions, `body`."""
    total_w, total_h = LEFT + WIDTH + RIGHT, TOP + HEIGHT + BOTTOM
    parts = [f'<svg id="{chart_id}" xmlns="http://www.w3.org/2000/svg" width="{total_w}" '
             f'height="{total_h}" viewBox="0 0 {total_w} {total_h}">']
    for step in range(5):
        value = top * step / 4
        y = TOP + HEIGHT - HEIGHT * step / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + WIDTH}" y2="{y:.1f}" '
                     'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{html.escape(label(value))}</text>")
    for x, text in x_labels:  # the labels at the ends stay inside the chart
        anchor = "start" if x <= LEFT else "end" if x >= LEFT + WIDTH else "middle"
        parts.append(f'<text x="{x:.1f}" y="{TOP + HEIGHT + 18}" text-anchor="{anchor}">'
                     f"{html.escape(text)}</text>")
    parts.append(body)
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def line_chart(chart_id: str, xs: list[float], lines: dict[str, list[float]], unit: str,
               label: Any) -> str:
    """Lines over the seconds of the run (one point per second)."""
    if not xs:
        return f'<p id="{chart_id}">No whole second was measured.</p>'
    top = _nice_top(max(max(values, default=0.0) for values in lines.values()))
    first, last = xs[0], xs[-1]
    span = (last - first) or 1.0

    def x_of(x: float) -> float:
        return LEFT + WIDTH * ((x - first) / span if len(xs) > 1 else 0.5)

    body = []
    for name, values in lines.items():
        points = " ".join(f"{x_of(x):.1f},{TOP + HEIGHT - HEIGHT * v / top:.1f}"
                          for x, v in zip(xs, values, strict=True))
        body.append(f'<polyline class="line-{name}" fill="none" stroke="{COLOURS[name]}" '
                    f'stroke-width="2" points="{points}"/>')
        body += [f'<circle class="point-{name}" cx="{x_of(x):.1f}" '
                 f'cy="{TOP + HEIGHT - HEIGHT * v / top:.1f}" r="2.5" fill="{COLOURS[name]}">'
                 f"<title>{name} {label(v)} at {x:g}s</title></circle>"
                 for x, v in zip(xs, values, strict=True)]
    ticks = sorted({xs[0], xs[len(xs) // 2], xs[-1]})
    axis = label if unit != "req/s" else _number
    return _frame(chart_id, top, axis, [(x_of(x), f"{x:g}s") for x in ticks], "".join(body))


def histogram_bins(stats: RunStats) -> list[tuple[float, float, int]]:
    """The latency histogram regrouped into at most HISTOGRAM_BINS bins equally wide on a log
    scale: (low ns, high ns, count) each."""
    counts = stats.latency.counts
    filled = [(index, counts[index]) for index in range(BUCKET_COUNT) if counts[index]]
    if not filled:
        return []
    low = max(float(bucket_bounds(filled[0][0])[0]), 1.0)
    last_low, last_width = bucket_bounds(filled[-1][0])
    high = max(float(last_low + last_width), low * 1.01)
    ratio = math.log(high / low)
    bins = [[low * math.exp(ratio * k / HISTOGRAM_BINS),
             low * math.exp(ratio * (k + 1) / HISTOGRAM_BINS), 0]
            for k in range(HISTOGRAM_BINS)]
    for index, count in filled:
        start, width = bucket_bounds(index)
        middle = max(start + width / 2, low)
        position = int(math.log(middle / low) / ratio * HISTOGRAM_BINS)
        bins[min(max(position, 0), HISTOGRAM_BINS - 1)][2] += count
    return [(a, b, int(c)) for a, b, c in bins]


def histogram_chart(stats: RunStats) -> str:
    bins = histogram_bins(stats)
    if not bins:
        return '<p id="histogram-chart">No request was answered.</p>'
    top = _nice_top(max(count for _, _, count in bins))
    width = WIDTH / len(bins)
    bars = []
    for position, (low, high, count) in enumerate(bins):
        if not count:
            continue
        height = max(HEIGHT * count / top, 1.0)  # a lone slow request stays visible
        bars.append(f'<rect class="bar" x="{LEFT + position * width:.1f}" '
                    f'y="{TOP + HEIGHT - height:.1f}" width="{max(width - 1, 1):.1f}" '
                    f'height="{height:.1f}" fill="{COLOURS["bars"]}"><title>'
                    f"{format_time(low)} - {format_time(high)}: {count} requests"
                    "</title></rect>")
    labels = [(LEFT + position * width, format_time(bins[position][0]))
              for position in (0, len(bins) // 2)] + [(LEFT + WIDTH, format_time(bins[-1][1]))]
    return _frame("histogram-chart", top, _number, labels, "".join(bars))

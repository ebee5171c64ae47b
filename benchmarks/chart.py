"""A hand-written SVG bar chart of the throughput scenarios (no plotting dependency).

For each load scenario, one horizontal bar per server: its median requests/s
(messages/s for WebSocket echo)
relative to the baseline server (uvicorn = 1.0), labelled with the figure.
HTTP/2 (h2) is left out: uvicorn, the baseline, does not take part in it.
This module only draws; it must not compute anything report.py does not give it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from benchmarks.report import BASELINE, UNITS, Results, headline, ratio

COLOURS = {"qactuar": "#d9480f", "uvicorn": "#1c7ed6", "granian": "#2b8a3e",
           "qactuar-postfork": "#f08c00",
           "hypercorn": "#7048e8", "daphne": "#868e96", "limit": "#343a40"}
WIDTH, LABEL_W, BAR_H, GAP, TITLE_H = 820, 110, 18, 4, 26


def svg_chart(results: Results, meta: dict[str, Any]) -> str:
    groups = [(name, e) for name, e in results.items() if e["kind"] in ("wrk", "ws")]
    ratios = [ratio(results, name, server) or 0.0
              for name, e in groups for server in e["servers"]]
    top = max([1.0, *ratios]) * 1.05
    plot_w = WIDTH - LABEL_W - 190
    parts, y = [], 40
    for name, entry in groups:
        parts.append(f'<text x="8" y="{y + 16}" class="t">{escape(entry["title"])}</text>')
        y += TITLE_H
        for server, result in entry["servers"].items():
            r = ratio(results, name, server)
            colour = COLOURS.get(server, "#495057")
            parts.append(f'<text x="{LABEL_W - 6}" y="{y + 13}" text-anchor="end">'
                         f'{escape(server)}</text>')
            if result.failures or r is None:
                label = "FAILED" if result.failures else "no baseline"
                parts.append(f'<text x="{LABEL_W + 4}" y="{y + 13}" class="f">{label}</text>')
            else:
                w = max(1.0, plot_w * r / top)
                metric = headline(entry)
                rate = result.median(metric) or 0
                parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                             f'fill="{colour}"/>')
                parts.append(f'<text x="{LABEL_W + w + 6:.1f}" y="{y + 13}">{r:.2f} x '
                             f'({rate:,.0f} {UNITS[metric]})</text>')
            y += BAR_H + GAP
        y += 10
    baseline_x = LABEL_W + plot_w * 1.0 / top
    height = y + 30
    note = escape(f"{meta['date']} - {meta['cpu']}, one worker on one CPU unless the title says "
                  "otherwise, "
                  f"median of {meta['settings']['rounds']} rounds")
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        '<style>.t{font-weight:bold;font-size:13px}.f{fill:#c92a2a;font-weight:bold}</style>',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="8" y="22" class="t">Requests (messages)/s relative to {BASELINE} '
        f'(longer is faster)</text>',
        *parts,
        f'<line x1="{baseline_x:.1f}" y1="34" x2="{baseline_x:.1f}" y2="{y - 6}" '
        f'stroke="#1c7ed6" stroke-dasharray="4 3"/>',
        f'<text x="8" y="{height - 10}" fill="#666">{note}</text>',
        "</svg>", ""])

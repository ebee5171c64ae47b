"""Aggregate rounds and write the results: console table, JSON, Markdown, SVG chart.

This module owns presentation and the speed targets' evaluation; it must not
run servers or load tools.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.servers import BASELINE, PEERS_PER_PYTHON, version_row

# Per measurement kind: the headline metric and whether more of it is better.
HEADLINE = {"wrk": ("rps", True), "h2": ("rps", True), "ws": ("mps", True),
            "memory": ("bytes_per_conn", False), "startup": ("startup_ms", False)}
UNITS = {"rps": "req/s", "mps": "msg/s", "bytes_per_conn": "bytes/conn", "startup_ms": "ms",
         "requests_per_cpu_s": "req/CPU-s"}
# Per load kind: the work done per second of server CPU (steadier on a shared machine).
EFFICIENCY = {"wrk": ("requests_per_cpu_s", "req/CPU-s"),
              "h2": ("requests_per_cpu_s", "req/CPU-s"),
              "ws": ("messages_per_cpu_s", "msg/CPU-s")}
LOAD_TOOL = {"wrk": "wrk", "h2": "h2load", "ws": "wsload"}


def headline(entry: dict[str, Any]) -> str:
    """The metric a scenario's servers are compared by: its kind's, unless the scenario
    names another (static-file: req/CPU-s, where the load tool is the limit)."""
    return entry.get("headline") or HEADLINE[entry["kind"]][0]


def load_tool(entry: dict[str, Any]) -> str:
    """The load tool of a scenario's results (the HTTP/1.1 scenarios' is chosen at run time;
    results written before that choice existed were wrk's)."""
    return entry.get("load_tool") or LOAD_TOOL.get(entry["kind"], "the load tool")


# Per load kind: its latency columns (h2load reports no percentiles, only min/max/mean/sd).
LATENCY = {"wrk": [("p50_ms", "p50 ms"), ("p99_ms", "p99 ms")],
           "h2": [("mean_ms", "mean ms"), ("max_ms", "max ms")]}


@dataclass
class ServerResult:
    """One server's rounds in one scenario."""

    rounds: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self, metric: str) -> float | None:
        values = [r[metric] for r in self.rounds if metric in r]
        return statistics.median(values) if values else None

    def spread(self, metric: str) -> tuple[float, float] | None:
        values = [r[metric] for r in self.rounds if metric in r]
        return (min(values), max(values)) if values else None

    def to_json(self) -> dict[str, Any]:
        metrics = sorted({k for r in self.rounds for k in r})
        return {"status": "FAILED" if self.failures else "ok", "failures": self.failures,
                "median": {m: self.median(m) for m in metrics},
                "min": {m: self.spread(m)[0] for m in metrics},  # type: ignore[index]
                "max": {m: self.spread(m)[1] for m in metrics},  # type: ignore[index]
                "rounds": self.rounds}


# scenario name -> {"title", "kind", "pinned", "load_note",
#                   "servers": {server name -> ServerResult}}
Results = dict[str, dict[str, Any]]


def ratio(results: Results, scenario: str, server: str, other: str = BASELINE,
          metric: str | None = None) -> float | None:
    """server's median of `metric` (default: the headline) over other's; None if not both."""
    entry = results.get(scenario)
    if entry is None or server not in entry["servers"] or other not in entry["servers"]:
        return None
    metric = metric or headline(entry)
    mine, theirs = (entry["servers"][name] for name in (server, other))
    if mine.failures or theirs.failures:
        return None
    a, b = mine.median(metric), theirs.median(metric)
    return a / b if a is not None and b else None


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric.endswith("_ms"):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return f"{value:,.0f}"


def table_rows(results: Results, scenario: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one scenario's table (shared by console and Markdown)."""
    entry = results[scenario]
    metric = headline(entry)
    header = ["server", f"{UNITS[metric]} (median)", "min - max", f"x {BASELINE}"]
    # The efficiency column shows the kind's own headline when the two trade places.
    efficiency = EFFICIENCY.get(entry["kind"], ("", ""))
    if efficiency[0] == metric:
        kind_metric = HEADLINE[entry["kind"]][0]
        efficiency = (kind_metric, UNITS[kind_metric])
    latency = LATENCY.get(entry["kind"], [])
    header[3:3] = [title for _, title in latency]
    if entry["kind"] in EFFICIENCY:
        header[-1:-1] = ["server CPU %", f"{load_tool(entry)} CPU %", efficiency[1]]
    rows = []
    for name, result in entry["servers"].items():
        spread = result.spread(metric)
        row = [name, _fmt(result.median(metric), metric),
               f"{_fmt(spread[0], metric)} - {_fmt(spread[1], metric)}" if spread else "-"]
        row += [_fmt(result.median(key), key) for key, _ in latency]
        if entry["kind"] in EFFICIENCY:
            row += [_fmt(result.median("server_cpu_pct"), "pct"),
                    _fmt(result.median("load_cpu_pct"), "pct"),
                    _fmt(result.median(efficiency[0]), "rate")]
        r = ratio(results, scenario, name)
        row.append(f"{r:.2f}" if r is not None else "-")
        if result.failures:
            row[1] = f"FAILED ({row[1]})" if result.rounds else "FAILED"
        rows.append(row)
    return header, rows


BUSY_SERVER_PCT = 80  # a saturated one-worker server uses about 100% of its CPU
SATURATED_LOAD_PCT = 90
# A target is judged by req/s (msg/s) only when both servers had this much of their CPU.
JUDGED_SERVER_PCT = 90


def cpu_notes(entry: dict[str, Any]) -> list[str]:
    """Warnings that a figure measures the machine or the load tool, not the server."""
    tool = load_tool(entry)
    if not entry.get("pinned", True):
        return [f"  note: servers and {tool} share every CPU by design (several workers); "
                "CPU % is of all CPUs, and req/CPU-s is the per-core figure"]
    notes, starved = [], []
    for name, result in entry["servers"].items():
        server, load = result.median("server_cpu_pct"), result.median("load_cpu_pct")
        if load is not None and load > SATURATED_LOAD_PCT:
            more = " (more wrk CPUs: --load-cpu 1-3)" if tool == "wrk" else ""
            notes.append(f"  note: {tool} used {load:.0f}% of its CPU against {name}: the "
                         f"figure may be {tool}'s limit, not the server's{more}")
        elif server is not None and server < BUSY_SERVER_PCT:
            starved.append(f"{name} {server:.0f}%")
    if starved:
        notes.append(f"  note: under load the server used only {', '.join(starved)} of its "
                     "CPU: something else ran there, so the per-second figure is noisy "
                     "(the per-CPU-s one less so)")
    return notes


def python_rows_note(meta: dict[str, Any]) -> list[str]:
    """What the rows of --pythons are: the same servers under other interpreters."""
    settings = meta["settings"]
    rows = settings.get("qactuar_pythons") or {}
    if not rows:
        return []
    own = settings.get("qactuar_python") or meta["python"]
    described = "; ".join(f"{name}: {where}" for name, where in rows.items())
    return [f"Rows per Python: qactuar runs under Python {own}, the peers under "
            f"{meta['python']}; {described}. Same code and settings, each interpreter with "
            "its own compiled qactuar, in the same run; each version's targets compare "
            "servers under that version."]


def before_lines(results: Results, meta: dict[str, Any]) -> list[str]:
    """--before: each qactuar row's headline median over its twin's at the commit, and
    the ratio of each round (the two ran next to each other in it)."""
    twins = meta["settings"].get("qactuar_before") or {}
    if not twins:
        return []
    lines = [f"Before/after, against {'; '.join(dict.fromkeys(twins.values()))}: the working "
             "tree's median over the commit's:"]
    for scenario, entry in results.items():
        metric = headline(entry)
        for twin in twins:
            now = twin.rsplit(" [", 1)[0]
            r = ratio(results, scenario, now, twin)
            if r is None:
                continue
            pairs = zip(entry["servers"][now].rounds, entry["servers"][twin].rounds,
                        strict=False)
            each = " ".join(f"{a[metric] / b[metric]:.2f}" for a, b in pairs
                            if metric in a and b.get(metric))
            lower = " (lower is better)" if metric.endswith(("_ms", "_per_conn")) else ""
            lines.append(f"  {scenario}, {now}: {r:.3f} x by {metric}{lower}; "
                         f"per round {each}")
    return [*lines, ""]


def console_report(results: Results, meta: dict[str, Any]) -> str:
    lines = [_meta_line(meta), *python_rows_note(meta), ""]
    for scenario, entry in results.items():
        header, rows = table_rows(results, scenario)
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
        lines.append(f"== {entry['title']} ==")
        if entry.get("load_note"):
            lines.append(f"  ({entry['load_note']})")
        for row in [header, *rows]:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        for name, result in entry["servers"].items():
            lines += [f"  {name} FAILED: {why}" for why in dict.fromkeys(result.failures)]
        lines += cpu_notes(entry)
        lines.append("")
    lines += before_lines(results, meta)
    lines += ["Targets (qactuar):", *target_lines(results)]
    return "\n".join(lines)


def summary_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """One row per scenario, one column per server: the table of docs/benchmarks.md."""
    servers = list(dict.fromkeys(s for e in results.values() for s in e["servers"]))
    header = ["scenario", *servers, f"qactuar x {BASELINE}"]
    rows = []
    for scenario, entry in results.items():
        metric = headline(entry)
        row = [f"{entry['title']}, {UNITS[metric]}"]
        for server in servers:
            result = entry["servers"].get(server)
            if result is None:
                row.append("n/a")
            else:
                row.append("FAILED" if result.failures else _fmt(result.median(metric), metric))
        r = ratio(results, scenario, "qactuar")
        rows.append([*row, f"{r:.2f}" if r is not None else "-"])
    return header, rows


def markdown_report(results: Results, meta: dict[str, Any]) -> str:
    lines = [f"<!-- {_meta_line(meta)} -->", *python_rows_note(meta), ""]
    lines += [*_markdown_table(*summary_rows(results)), ""]
    for scenario, entry in results.items():
        header, rows = table_rows(results, scenario)
        note = f" ({entry['load_note']})" if entry.get("load_note") else ""
        lines += [f"**{entry['title']}**{note}", "", *_markdown_table(header, rows), ""]
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]


def _qactuar_python(settings: dict[str, Any]) -> str:
    """" (qactuar on Python 3.13.0)" when --qactuar-python ran it under another one."""
    version = settings.get("qactuar_python")
    return f" (qactuar on Python {version})" if version else ""


def _meta_line(meta: dict[str, Any]) -> str:
    s = meta["settings"]
    return (f"{meta['date']}  {meta['cpu']} ({meta['cpus']} CPUs), Linux {meta['kernel']}, "
            f"Python {meta['python']}{_qactuar_python(s)}, {meta['tools'].get('wrk', '')}; "
            f"{s['rounds']} rounds of {s['seconds']}s after {s['warmup_seconds']}s warm-up, "
            f"{_http1_tool(s)} -c{s['wrk_connections']}, "
            f"server on CPU {s['server_cpu']}, load on CPU {s['load_cpu']}")


def _http1_tool(settings: dict[str, Any]) -> str:
    """The HTTP/1.1 load tool's command in the settings (wrk in results from before the
    choice existed)."""
    if settings.get("http1_load_tool") == "qactuar load":
        return f"qactuar load --h1 -t {settings['wrk_threads']}"
    return f"wrk -t{settings['wrk_threads']}"


# (scenario, other server, minimum ratio of qactuar's headline metric to the other's)
RATIO_TARGETS = [("hello", "uvicorn", 1.6), ("hello", "granian", 1.0),
                 ("10k", "uvicorn", 1.3), ("echo", "uvicorn", 1.3),
                 ("ws-echo", "uvicorn", 1.2), ("h2", "hypercorn", 4.0),
                 ("h2", "granian", 1.0), ("h2-tls", "granian", 1.0),
                 ("static-file", "granian", 1.0), ("starlette", "granian", 1.2),
                 ("fastapi", "granian", 1.2), ("django", "granian", 1.0),
                 ("ws-echo", "granian", 1.4), ("ws-echo-4k", "granian", 1.4),
                 ("hello", "limit", 0.6)]
# The rows of --pythons (servers.version_row): "qactuar (3.12)" -> "3.12".
_VERSION_ROW = re.compile(r"qactuar \((\d+\.\d+)\)\Z")
MAX_IDLE_BYTES = 4096


def ratio_target_line(results: Results, scenario: str, other: str, minimum: float,
                      mine: str = "qactuar") -> str:
    """One ratio target, by the headline (req/s, msg/s) and by work per CPU-second.

    Judged met/MISSED by the headline only when both servers had at least
    JUDGED_SERVER_PCT of their CPU; otherwise the machine was busy and the
    verdict is "noisy", with both ratios shown for the reader to weigh.
    """
    entry = results.get(scenario)
    by_speed = ratio(results, scenario, mine, other)
    label = f"{scenario} >= {minimum} x {other}" + (f" ({mine})" if mine != "qactuar" else "")
    if entry is None or by_speed is None:
        return f"  {label}: not measured"
    unit = UNITS[headline(entry)]
    efficiency, efficiency_unit = EFFICIENCY[entry["kind"]]
    per_cpu = headline(entry) == efficiency  # static-file: judged by req/CPU-s itself
    if per_cpu:
        efficiency = HEADLINE[entry["kind"]][0]
        efficiency_unit = UNITS[efficiency]
    by_cpu = ratio(results, scenario, mine, other, efficiency)
    shown = f"{by_speed:.2f} by {unit}" + (f", {by_cpu:.2f} by {efficiency_unit}"
                                           if by_cpu is not None else "")
    # The limit server is held back by the load tool, not by its CPU share: only the
    # server measured against it needs its CPU for a verdict.
    judged = (mine,) if other.partition(" (")[0] == "limit" else (mine, other)
    cpu = [entry["servers"][name].median("server_cpu_pct") for name in judged]
    if not per_cpu and any(pct is None or pct < JUDGED_SERVER_PCT for pct in cpu):
        got = " and ".join(f"{name} {pct or 0:.0f}%" for name, pct
                           in zip(judged, cpu, strict=True))
        verdict = f"noisy: servers got {got} of their CPU, not judged"
    else:
        verdict = "met" if by_speed >= minimum else "MISSED"
    return f"  {label}: {shown} ({verdict})"


def target_lines(results: Results) -> list[str]:
    """Each speed target of the issues whose scenario ran, with what this run measured:
    met, missed, or not measured (a server it compares was not run)."""
    lines = [ratio_target_line(results, scenario, other, minimum)
             for scenario, other, minimum in RATIO_TARGETS if scenario in results]
    # Each --pythons version against the peers run under the same version.
    rows = dict.fromkeys(name for entry in results.values() for name in entry["servers"])
    for version in [m[1] for m in map(_VERSION_ROW.match, rows) if m]:
        lines += [ratio_target_line(results, scenario, version_row(other, version), minimum,
                                    mine=version_row("qactuar", version))
                  for scenario, other, minimum in RATIO_TARGETS
                  if scenario in results and other in PEERS_PER_PYTHON
                  and version_row(other, version) in rows]
    for scenario, entry in results.items():
        servers = entry["servers"]
        if entry["kind"] != "wrk" or "qactuar" not in servers or BASELINE not in servers:
            continue
        mine, theirs = servers["qactuar"].median("p99_ms"), servers[BASELINE].median("p99_ms")
        if mine is not None and theirs is not None:
            verdict = "met" if mine <= theirs else "MISSED"
            lines.append(f"  {scenario} p99 <= {BASELINE}'s: {mine:.2f} ms vs "
                         f"{theirs:.2f} ms ({verdict})")
    h2 = results.get("h2", {}).get("servers", {}).get("qactuar")
    if h2 is not None and h2.median("mean_ms") is not None:
        lines.append(f"  h2 p99: n/a (h2load reports no percentiles; qactuar's mean "
                     f"{h2.median('mean_ms'):.2f} ms, max {h2.median('max_ms'):.2f} ms)")
    idle = results.get("idle-memory", {}).get("servers", {}).get("qactuar")
    if idle is not None and idle.median("bytes_per_conn") is not None:
        value = idle.median("bytes_per_conn")
        verdict = "met" if value <= MAX_IDLE_BYTES else "MISSED"
        lines.append(f"  idle-memory <= {MAX_IDLE_BYTES} bytes/conn: {value:,.0f} ({verdict})")
    return lines


def write_outputs(results: Results, meta: dict[str, Any], directory: Path) -> list[Path]:
    from benchmarks.chart import svg_chart

    directory.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "targets": target_lines(results),
            "scenarios": {name: {"title": e["title"], "kind": e["kind"],
                                 "pinned": e.get("pinned", True),
                                 "load_note": e.get("load_note", ""),
                                 "headline": headline(e),
                                 "servers": {s: r.to_json() for s, r in e["servers"].items()}}
                          for name, e in results.items()}}
    paths = [directory / "latest.json", directory / "latest.md", directory / "latest.svg"]
    paths[0].write_text(json.dumps(data, indent=2) + "\n")
    paths[1].write_text(markdown_report(results, meta))
    paths[2].write_text(svg_chart(results, meta))
    return paths

"""`--json` and `--csv` files of a run, and reading a JSON file back for `merge`.

The JSON document is versioned (`"schema": "qactuar-load/1"`) and carries the
latency histogram itself (log-linear buckets), so runs merge exactly.  The CSV
file has a row per request (start, status, latency, bytes, error) and a
sibling `<FILE>.seconds.csv` has the per-second series.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from qactuar import __version__
from qactuar.load.report import PERCENTILES, percentile_label
from qactuar.load.stats import RunStats

JSON_SCHEMA = "qactuar-load/1"


def summary(stats: RunStats) -> dict[str, Any]:
    """The figures people read first, in the JSON beside the raw counts."""
    latency = stats.latency
    seconds = stats.duration_s or 1e-9
    return {"requests_per_second": stats.done() / seconds,
            "requests_per_cpu_second": stats.done() / stats.cpu_s if stats.cpu_s else 0.0,
            "latency_ns": {**{percentile_label(p): latency.percentile(p) for p in PERCENTILES},
                           "min": latency.minimum, "max": latency.maximum,
                           "mean": latency.mean(), "sd": latency.stdev()}}


def run_document(stats: RunStats, run: dict[str, Any]) -> dict[str, Any]:
    results = stats.to_dict()
    return {"schema": JSON_SCHEMA, "tool": f"qactuar load {__version__}", "run": run,
            "summary": summary(stats), "results": results}


def write_json(path: Path, stats: RunStats, run: dict[str, Any]) -> None:
    path.write_text(json.dumps(run_document(stats, run), indent=1) + "\n")


def read_json(path: Path) -> tuple[RunStats, dict[str, Any]]:
    """The statistics and run description of a `--json` file; ValueError when it is not one."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != JSON_SCHEMA:
        raise ValueError(f"{path}: not a qactuar load result ({JSON_SCHEMA})")
    try:
        return RunStats.from_dict(document["results"]), document.get("run", {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: damaged results ({exc})") from None


def write_csv(path: Path, stats: RunStats) -> Path:
    """The per-request rows into `path`, the per-second series beside; the series' path."""
    origin = stats.measure_from_ns
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["start_s", "status", "latency_ms", "bytes", "error"])
        for start, status, latency, size, error in stats.rows or ():
            writer.writerow([f"{(start - origin) / 1e9:.6f}", status or "",
                             f"{latency / 1e6:.3f}", size, error])
    series_path = path.with_name(path.name + ".seconds.csv")
    with series_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["second", "requests", "errors", "p50_ms", "p90_ms", "p99_ms",
                         "max_ms"])
        for entry in stats.series:
            writer.writerow([entry["second"], entry["requests"], entry["errors"],
                             *(f"{entry[key] / 1e6:.3f}"
                               for key in ("p50_ns", "p90_ns", "p99_ns", "max_ns"))])
    return series_path

"""Run `qactuar load` where the benchmarks used wrk, and read its JSON as a `WrkResult`.

The HTTP/1.1 scenarios' load tool by default (`--load-tool qactuar`): on one
core it costs less CPU per request than wrk (`python -m benchmarks.load_speed`,
figures in docs/load.md).  Same connections, duration, timeout, headers and
POST bodies as the wrk command line of `benchmarks/wrk.py`, one worker process
per load CPU; the percentiles come from its latency histogram.  This module
owns that command line only; it must not decide whether a result passes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.load_tool import run_load_tool
from benchmarks.wrk import CONNECTIONS, WrkResult
from qactuar.load.histogram import Histogram

PERCENTILES = ("50", "75", "90", "99")


def run_qactuar_load(url: str, seconds: int, cpu: str, threads: int, body_size: int = 0,
                     connections: int = CONNECTIONS, timeout_seconds: int = 5,
                     headers: tuple[str, ...] = ()) -> WrkResult:
    """Load `url` for `seconds` from CPUs `cpu`; raise RuntimeError when the tool fails."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        command = ["taskset", "-c", cpu, sys.executable, "-m", "qactuar.load", "--h1",
                   "-c", str(connections), "-t", str(threads), "-D", str(seconds),
                   "--timeout", str(timeout_seconds), "--no-progress", "--json", str(out)]
        for header in headers:
            command += ["-H", header]
        if body_size:
            body = Path(folder) / "body"
            body.write_bytes(b"x" * body_size)
            command += ["-d", str(body), "-H", "Content-Type: application/octet-stream"]
        # exit 1 means some requests failed or errored: the result says which
        run = run_load_tool("qactuar load", [*command, url], timeout=seconds + 60,
                            allowed_codes=(0, 1))
        if not out.exists():
            raise RuntimeError(f"qactuar load wrote no results: {run.stdout[-2000:]}")
        results = json.loads(out.read_text())["results"]
    return parse_results(results, run.cpu_seconds)


def parse_results(results: dict[str, Any], cpu_seconds: float) -> WrkResult:
    """A `WrkResult` from the `results` of qactuar load's JSON."""
    latency = Histogram.from_dict(results["latency"])
    classes = results["status_classes"]
    done = results["succeeded"] + results["failed"]
    return WrkResult(
        requests_per_second=done / results["duration_s"], requests=done,
        latency_ms={p: latency.percentile(float(p)) / 1e6 for p in PERCENTILES},
        non_2xx_3xx=sum(classes) - classes[2] - classes[3],
        socket_errors={kind: int(count) for kind, count in results["errors"].items()},
        cpu_seconds=cpu_seconds)

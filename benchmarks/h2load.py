"""Run h2load (nghttp2's HTTP/2 load tool) against a server and parse its report.

h2load speaks h2c with prior knowledge to an http:// URL: the connection opens
with the HTTP/2 preface, no Upgrade. It reports request time as min, max,
mean and standard deviation only (no percentiles), so this module reports
mean and max, never a made-up p99. This module owns the h2load command line
and the parsing of its output; it must not decide whether a result passes
(scenarios do, with `errors()`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from benchmarks.load_tool import run_load_tool

# Issue 6: 16 connections, each with up to 10 concurrent streams.
CONNECTIONS = 16
STREAMS = 10

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class H2loadResult:
    """What one h2load run reports, plus its own CPU time and wall time."""

    requests_per_second: float
    requests: int  # requests done (answered or failed) in the measured duration
    failures: dict[str, int]  # "failed", "errored", "timeout" -> count
    status_counts: dict[str, int]  # "2xx", "3xx", "4xx", "5xx" -> count
    mean_ms: float  # time for request: mean
    max_ms: float  # time for request: max
    cpu_seconds: float = 0.0  # h2load's own user + system time
    wall_seconds: float = 0.0
    output: str = field(default="", repr=False)

    def errors(self) -> list[str]:
        """Why this run must not count, or [] when every request got a 2xx answer."""
        problems = []
        if self.requests == 0:
            problems.append("no request completed")
        problems += [f"{count} requests {kind}" for kind, count in self.failures.items() if count]
        problems += [f"{count} {kind} responses" for kind, count in self.status_counts.items()
                     if count and kind != "2xx"]
        return problems


def run_h2load(url: str, seconds: int, cpu: str, threads: int,
               connections: int = CONNECTIONS, streams: int = STREAMS) -> H2loadResult:
    """Load `url` for `seconds` (h2load -D) from CPUs `cpu`; RuntimeError when h2load fails."""
    command = ["taskset", "-c", cpu, "h2load", f"-t{threads}", f"-c{connections}",
               f"-m{streams}", f"-D{seconds}", url]
    run = run_load_tool("h2load", command, timeout=seconds + 60)
    result = parse_h2load(run.stdout)
    result.cpu_seconds = run.cpu_seconds
    result.wall_seconds = run.wall_seconds
    return result


def parse_h2load(output: str) -> H2loadResult:
    """Parse h2load's text report."""
    rps = re.search(r"^finished in [\d.]+\w*, ([\d.]+) req/s", output, re.M)
    requests = re.search(r"^requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, "
                         r"(\d+) failed, (\d+) errored, (\d+) timeout", output, re.M)
    status = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx",
                       output, re.M)
    latency = re.search(r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+"
                        r"([\d.]+)(us|ms|s)", output, re.M)
    if rps is None or requests is None or status is None or latency is None:
        raise RuntimeError(f"cannot parse h2load output:\n{output}")
    _, _, high, high_unit, mean, mean_unit = latency.groups()
    return H2loadResult(
        float(rps.group(1)), int(requests.group(1)),
        dict(zip(("failed", "errored", "timeout"), map(int, requests.groups()[1:]),
                 strict=True)),
        dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, status.groups()), strict=True)),
        mean_ms=float(mean) * _UNIT_MS[mean_unit], max_ms=float(high) * _UNIT_MS[high_unit],
        output=output)

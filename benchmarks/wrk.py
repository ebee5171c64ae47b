"""Run wrk against a server and parse its report.

This module owns the wrk command line and the parsing of its output; it must
not decide whether a result passes (scenarios do, with `errors()`).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load_tool import run_load_tool

# One wrk thread per load CPU (one by default); 64 keep-alive connections keep
# a one-worker server busy every moment (no idle gaps between a response and
# the next request) without turning the figure into a measure of queueing alone.
CONNECTIONS = 64

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass
class WrkResult:
    """What one wrk run reports."""

    requests_per_second: float
    requests: int
    latency_ms: dict[str, float]  # "50", "75", "90", "99" -> milliseconds
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # wrk's own user + system time

    def errors(self) -> list[str]:
        """Why this run must not count, or [] when every request got a good answer."""
        problems = []
        if self.requests == 0:
            problems.append("no request completed")
        if self.non_2xx_3xx:
            problems.append(f"{self.non_2xx_3xx} non-2xx/3xx responses")
        problems += [f"{count} socket {kind} errors"
                     for kind, count in self.socket_errors.items() if count]
        return problems


def post_script(body_size: int) -> Path:
    """A wrk Lua script that POSTs a body of `body_size` bytes on every request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\n'
                     f'wrk.body = string.rep("x", {body_size})\n'
                     f'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    return Path(script.name)


def run_wrk(url: str, seconds: int, cpu: str, threads: int, script: Path | None = None,
            connections: int = CONNECTIONS, timeout_seconds: int = 5,
            headers: tuple[str, ...] = ()) -> WrkResult:
    """Load `url` for `seconds` from CPUs `cpu`; raise RuntimeError when wrk itself fails."""
    command = ["taskset", "-c", cpu, "wrk", f"-t{threads}", f"-c{connections}",
               f"-d{seconds}s", "--latency", "--timeout", f"{timeout_seconds}s"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    run = run_load_tool("wrk", [*command, url], timeout=seconds + 60)
    result = parse_wrk(run.stdout)
    result.cpu_seconds = run.cpu_seconds
    return result


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's text report (with `--latency`)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rps is None or total is None:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    latency = {pct: _to_ms(value, unit) for pct, value, unit in
               re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(n) for n in sock.groups()), strict=True)) if sock else {}
    return WrkResult(float(rps.group(1)), int(total.group(1)), latency,
                     int(non_2xx.group(1)) if non_2xx else 0, socket_errors)


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    first = (done.stdout + done.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "unknown"

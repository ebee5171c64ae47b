"""`python -m benchmarks.load_speed`: the load tools' own cost, side by side.

Each tool loads a server pinned to one CPU from another CPU for a few seconds;
what counts is the tool's CPU time per request (user + system, taken from
the reaped child), not the server's throughput:

- HTTP/1.1, 64 connections: wrk against `qactuar load --h1` (limit server);
- HTTP/1.1 pipelined depth 16: `qactuar load --h1 -m 16` (limit server; wrk
  pipelines only through a Lua script, h2load not at all);
- HTTP/2, 16 connections x 10 streams: h2load against `qactuar load`
  (a Qactuar server: the limit server speaks HTTP/1.1 only).

Every figure comes from the same run on the same machine; on a shared machine
read the ratios, not the absolute numbers.  This module owns these runs only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.load_tool import run_load_tool
from benchmarks.process import ROOT, free_port, port_in_use

RESULTS = Path(__file__).resolve().parent / "results" / "load-latest.md"


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not port_in_use(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command[0]} did not start: {' '.join(command)}")
        time.sleep(0.05)
    return process


def qactuar_load(args: list[str], cpu: str, seconds: int) -> tuple[int, float, float]:
    """Requests done, the tool's CPU seconds (its whole process, Python's start-up and
    imports included) and the CPU seconds of the run alone (as the tool reports it)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        run = run_load_tool("qactuar load", ["taskset", "-c", cpu, sys.executable, "-m",
                                             "qactuar.load", "-D", str(seconds), *args,
                                             "--json", str(out)], timeout=seconds + 60)
        results = json.loads(out.read_text())["results"]
    return results["succeeded"], run.cpu_seconds, results["cpu_s"]


def wrk(url: str, cpu: str, seconds: int) -> tuple[int, float, float]:
    run = run_load_tool("wrk", ["taskset", "-c", cpu, "wrk", "-t1", "-c64", f"-d{seconds}s",
                                url], timeout=seconds + 60)
    return int(run.stdout.split(" requests in")[0].split()[-1]), run.cpu_seconds, 0.0


def h2load(url: str, cpu: str, seconds: int) -> tuple[int, float, float]:
    run = run_load_tool("h2load", ["taskset", "-c", cpu, "h2load", "-c16", "-m10",
                                   f"-D{seconds}", url], timeout=seconds + 60)
    done = next(line for line in run.stdout.splitlines() if line.startswith("requests:"))
    return int(done.split(" done")[0].split()[-1]), run.cpu_seconds, 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--load-cpu", default="0")
    args = parser.parse_args()
    rows = []
    limit_port, server_port = free_port(), free_port()
    limit = start(["taskset", "-c", args.server_cpu, sys.executable, "-m",
                   "benchmarks.limit_server", "--port", str(limit_port)], limit_port)
    server = start(["taskset", "-c", args.server_cpu, sys.executable, "-m", "qactuar",
                    "benchmarks.apps:hello", "--port", str(server_port), "--no-access-log"],
                   server_port)
    try:
        limit_url = f"http://127.0.0.1:{limit_port}/"
        server_url = f"http://127.0.0.1:{server_port}/"
        cpu, seconds = args.load_cpu, args.seconds
        rows.append(("HTTP/1.1, 64 connections", "wrk -t1 -c64",
                     wrk(limit_url, cpu, seconds)))
        rows.append(("HTTP/1.1, 64 connections", "qactuar load --h1 -c 64",
                     qactuar_load(["--h1", "-c", "64", limit_url], cpu, seconds)))
        rows.append(("HTTP/1.1 pipelined x16", "qactuar load --h1 -c 16 -m 16",
                     qactuar_load(["--h1", "-c", "16", "-m", "16", limit_url], cpu, seconds)))
        rows.append(("HTTP/2, 16 x 10 streams", "h2load -c16 -m10",
                     h2load(server_url, cpu, seconds)))
        rows.append(("HTTP/2, 16 x 10 streams", "qactuar load -c 16 -m 10",
                     qactuar_load(["-c", "16", "-m", "10", server_url], cpu, seconds)))
    finally:
        for process in (limit, server):
            process.terminate()
            process.wait(10)
    lines = ["| load | tool | requests | tool CPU s | requests per CPU-second | "
             "same, run only (no start-up) |", "|---|---|---:|---:|---:|---:|"]
    for load, tool, (requests, cpu_s, run_cpu_s) in rows:
        lines.append(f"| {load} | `{tool}` | {requests:,} | {cpu_s:.2f} | "
                     f"{requests / cpu_s if cpu_s else 0:,.0f} | "
                     f"{f'{requests / run_cpu_s:,.0f}' if run_cpu_s else '-'} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.write_text(f"# Load tools' CPU per request ({seconds} s each, "
                       f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{table}\n")


if __name__ == "__main__":
    main()

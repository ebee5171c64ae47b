"""`python -m benchmarks.load_speed`: the load tools' own cost, side by side.

Each tool loads a server pinned to one CPU from another CPU for a few seconds;
what counts is the tool's CPU time per request (user + system, taken from
the reaped child), not the server's throughput:

- HTTP/1.1, 64 connections: wrk against `qactuar load --h1` (limit server);
- HTTP/1.1 pipelined depth 16: `qactuar load --h1 -m 16` (limit server; wrk
  pipelines only through a Lua script, h2load not at all);
- HTTP/2, 16 connections x 10 streams: h2load against `qactuar load`
  (a Qactuar server: the limit server speaks HTTP/1.1 only);
- WebSocket echo, 100 connections x 64-byte text messages: the benchmarks'
  own WebSocket client `wsload` (C, epoll; `benchmarks/wsload.py`) against
  `qactuar load ws://` (a Qactuar server running `benchmarks.apps:ws_echo`),
  one message in flight per connection, then 16 (`wsload ... / 16` and
  `qactuar load -m 16`: the same messages in flight, like for like);
- `--rate 20000` (HTTP/1.1, 64 connections, limit server): the rate achieved
  against the rate asked, and the requests that were late or never sent.

`--before DIR` also runs `qactuar load` from another checkout (built in place,
e.g. the commit before a change) in the same run, rows marked "(before)".
`--ws-only` runs the WebSocket rows alone (into results/load-ws-latest.md).
The "system" column is the share of the tool's CPU time spent in the kernel
(system calls, the loopback's TCP work).

Every figure comes from the same run on the same machine; on a shared machine
read the ratios, not the absolute numbers.  This module owns these runs only.
"""

from __future__ import annotations

import argparse
import json
import os
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.load_tool import run_load_tool
from benchmarks.process import ROOT, free_port, port_in_use
from benchmarks.wsload import run_wsload

RATE = 20000  # --rate row: requests per second asked
WS_CONNECTIONS = 100  # as the ws-echo scenario
WS_MESSAGE = 64
WS_DEPTH = 16  # messages in flight per connection in the second WebSocket rows

RESULTS = Path(__file__).resolve().parent / "results" / "load-latest.md"
WS_RESULTS = RESULTS.with_name("load-ws-latest.md")  # --ws-only's, beside the full table


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


def qactuar_load_json(args: list[str], cpu: str, seconds: int, checkout: Path | None = None
                      ) -> tuple[dict[str, Any], float, float]:
    """The JSON results of one `qactuar load -D seconds` run (from `checkout` when given) and
    the tool's CPU seconds (its whole process, Python's start-up and imports included) and
    the system part of them."""
    env = dict(os.environ)
    python = [sys.executable]
    if checkout is not None:
        # -S: no .pth files, so an editable install of this checkout cannot shadow the other
        # (and it runs from there: `-m` puts the working directory first on the path)
        python.append("-S")
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), *site.getsitepackages()])
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        # a non-zero exit (e.g. --rate left requests unsent) still wrote its JSON
        run = run_load_tool("qactuar load", ["taskset", "-c", cpu, *python, "-m",
                                             "qactuar.load", "-D", str(seconds), *args,
                                             "--json", str(out)], timeout=seconds + 60,
                            env=env, allowed_codes=(0, 1), cwd=checkout)
        results = json.loads(out.read_text())["results"]
    return results, run.cpu_seconds, run.system_seconds


Row = tuple[int, float, float, float]  # answered, CPU s, run-only CPU s (0: -), system s


def qactuar_load(args: list[str], cpu: str, seconds: int, checkout: Path | None = None) -> Row:
    """Requests (or messages) answered, the tool's whole CPU seconds, the CPU seconds of
    the run alone (as the tool reports it: no start-up) and the system seconds."""
    results, cpu_s, system_s = qactuar_load_json(args, cpu, seconds, checkout)
    if results["errored"] or results["failed"]:
        raise RuntimeError(f"qactuar load {' '.join(args)}: {results['errored']} errored, "
                           f"{results['failed']} failed")
    return results["succeeded"], cpu_s, results["cpu_s"], system_s


def ws_client(port: int, cpu: str, seconds: int, depth: int = 1) -> Row:
    """wsload's echoes (its 1 s warm-up included, as its CPU time is) and CPU seconds."""
    result = run_wsload(port, WS_CONNECTIONS, WS_MESSAGE, seconds, cpu, depth)
    return result.messages, result.cpu_seconds, 0.0, result.system_seconds


def rate_row(url: str, cpu: str, seconds: int, checkout: Path | None = None) -> str:
    """One table row: the rate asked and achieved, late and unsent requests, tool CPU."""
    results, cpu_s, _ = qactuar_load_json(["--h1", "-c", "64", "--rate", str(RATE), url], cpu,
                                       seconds, checkout)
    achieved = results["started"] / results["duration_s"]
    label = " (before)" if checkout else ""
    return (f"| `--rate {RATE}`{label} | {achieved:,.1f} | {100 * achieved / RATE - 100:+.2f}% | "
            f"{results['late']:,} | {results['unsent']:,} | "
            f"{results['errored']:,} | {cpu_s:.2f} |")


def wrk(url: str, cpu: str, seconds: int) -> Row:
    run = run_load_tool("wrk", ["taskset", "-c", cpu, "wrk", "-t1", "-c64", f"-d{seconds}s",
                                url], timeout=seconds + 60)
    return (int(run.stdout.split(" requests in")[0].split()[-1]), run.cpu_seconds, 0.0,
            run.system_seconds)


def h2load(url: str, cpu: str, seconds: int) -> Row:
    run = run_load_tool("h2load", ["taskset", "-c", cpu, "h2load", "-c16", "-m10",
                                   f"-D{seconds}", url], timeout=seconds + 60)
    done = next(line for line in run.stdout.splitlines() if line.startswith("requests:"))
    return int(done.split(" done")[0].split()[-1]), run.cpu_seconds, 0.0, run.system_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--load-cpu", default="0")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="also run qactuar load from this checkout (built in place)")
    parser.add_argument("--ws-only", action="store_true", help="the WebSocket rows alone")
    args = parser.parse_args()
    rows = []
    limit_port, server_port, ws_port = free_port(), free_port(), free_port()
    limit = start(["taskset", "-c", args.server_cpu, sys.executable, "-m",
                   "benchmarks.limit_server", "--port", str(limit_port)], limit_port)
    server = start(["taskset", "-c", args.server_cpu, sys.executable, "-m", "qactuar",
                    "benchmarks.apps:hello", "--port", str(server_port), "--no-access-log"],
                   server_port)
    ws_server = start(["taskset", "-c", args.server_cpu, sys.executable, "-m", "qactuar",
                       "benchmarks.apps:ws_echo", "--port", str(ws_port), "--no-access-log",
                       "--ws-ping-interval", "0"], ws_port)
    checkouts: list[tuple[str, Path | None]] = [("", None)]
    if args.before:
        checkouts.insert(0, (" (before)", args.before.resolve()))
    try:
        limit_url = f"http://127.0.0.1:{limit_port}/"
        server_url = f"http://127.0.0.1:{server_port}/"
        cpu, seconds = args.load_cpu, args.seconds
        if not args.ws_only:
            rows += http_rows(limit_url, server_url, cpu, seconds, checkouts)
        rows += ws_rows(ws_port, cpu, seconds, checkouts)
        rate_rows = [] if args.ws_only else [rate_row(limit_url, cpu, seconds, checkout)
                                             for _, checkout in checkouts]
    finally:
        for process in (limit, server, ws_server):
            process.terminate()
            process.wait(10)
    lines = ["| load | tool | requests | tool CPU s | system | requests per CPU-second | "
             "same, run only (no start-up) |", "|---|---|---:|---:|---:|---:|---:|"]
    for load, tool, (requests, cpu_s, run_cpu_s, system_s) in rows:
        lines.append(f"| {load} | `{tool}` | {requests:,} | {cpu_s:.2f} | "
                     f"{100 * system_s / cpu_s if cpu_s else 0:.0f}% | "
                     f"{requests / cpu_s if cpu_s else 0:,.0f} | "
                     f"{f'{requests / run_cpu_s:,.0f}' if run_cpu_s else '-'} |")
    if rate_rows:
        lines += ["", f"`--h1 -c 64 --rate {RATE}` (limit server), {seconds} s:", "",
                  "| run | rate achieved (req/s) | vs asked | late | unsent | errored | "
                  "tool CPU s |", "|---|---:|---:|---:|---:|---:|---:|", *rate_rows]
    table = "\n".join(lines)
    print(table)
    results = WS_RESULTS if args.ws_only else RESULTS
    results.write_text(f"# Load tools' CPU per request ({seconds} s each, "
                       f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{table}\n")


def http_rows(limit_url: str, server_url: str, cpu: str, seconds: int,
              checkouts: list[tuple[str, Path | None]]) -> list[tuple[str, str, Row]]:
    rows = [("HTTP/1.1, 64 connections", "wrk -t1 -c64", wrk(limit_url, cpu, seconds))]
    for label, checkout in checkouts:
        rows.append(("HTTP/1.1, 64 connections", f"qactuar load --h1 -c 64{label}",
                     qactuar_load(["--h1", "-c", "64", limit_url], cpu, seconds, checkout)))
    for label, checkout in checkouts:
        rows.append(("HTTP/1.1 pipelined x16", f"qactuar load --h1 -c 16 -m 16{label}",
                     qactuar_load(["--h1", "-c", "16", "-m", "16", limit_url], cpu,
                                  seconds, checkout)))
    rows.append(("HTTP/2, 16 x 10 streams", "h2load -c16 -m10",
                 h2load(server_url, cpu, seconds)))
    for label, checkout in checkouts:
        rows.append(("HTTP/2, 16 x 10 streams", f"qactuar load -c 16 -m 10{label}",
                     qactuar_load(["-c", "16", "-m", "10", server_url], cpu, seconds,
                                  checkout)))
    return rows


def ws_rows(ws_port: int, cpu: str, seconds: int, checkouts: list[tuple[str, Path | None]]
            ) -> list[tuple[str, str, Row]]:
    """wsload and qactuar load with 1, then WS_DEPTH, messages in flight per connection."""
    rows = []
    ws_url = f"ws://127.0.0.1:{ws_port}/"
    for depth in (1, WS_DEPTH):
        load = f"WebSocket echo, {WS_CONNECTIONS} x {WS_MESSAGE} B, {depth} in flight each"
        rows.append((load, f"wsload {WS_CONNECTIONS} {WS_MESSAGE} ... / {depth}",
                     ws_client(ws_port, cpu, seconds, depth)))
        for label, checkout in checkouts:
            rows.append((load, f"qactuar load -c {WS_CONNECTIONS} -m {depth} "
                               f"--ws-message-size {WS_MESSAGE}{label}",
                         qactuar_load(["-c", str(WS_CONNECTIONS), "-m", str(depth),
                                       "--ws-message-size", str(WS_MESSAGE), ws_url],
                                      cpu, seconds, checkout)))
    return rows


if __name__ == "__main__":
    main()

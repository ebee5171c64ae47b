"""`python -m benchmarks.client`: requests per client CPU-second, qactuar.client and its peers.

Each measurement is its own process pinned to one core (os.sched_setaffinity), the
server (Qactuar serving benchmarks.apps:hello, HTTP/1.1 and h2c on one port) pinned
to another.  A measurement warms up, then sends requests from 1 or 50 tasks on one
client object until it has spent MIN_CPU_SECONDS of CPU (or MAX_REQUESTS), and
reports requests / (user + system CPU seconds of the client process), checking every
answer.  Rounds interleave the clients (A B C A B C ...) so machine noise spreads over
all alike; the median round is reported, with each peer as a ratio of qactuar.client.

"bare" is the floor of the method: a uvloop Protocol with httptools and one future per
request (HTTP/1.1, one connection per task), no client around it.

    python -m benchmarks.client                  # every client, both protocols, 1 and 50 tasks
    python -m benchmarks.client --clients qactuar,httpx --rounds 1 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIN_CPU_SECONDS = 1.5
MAX_REQUESTS = 30_000
WARM_UP = 300
BODY = b"Hello, world!"
CLIENTS = ["qactuar", "bare", "aiohttp", "httpx", "niquests"]
# Which protocols each client speaks here (h2: HTTP/2 with prior knowledge, no TLS).
PROTOCOLS = {"qactuar": ["h1", "h2"], "bare": ["h1"], "aiohttp": ["h1"],
             "httpx": ["h1", "h2"], "niquests": ["h1", "h2"]}


# -- the clients, each: async make(url, protocol, tasks) -> (get coroutine fn, close fn) ---
async def make_qactuar(protocol: str, tasks: int) -> tuple[Any, Any]:
    from qactuar.client import Client

    client = Client(http2="prior-knowledge" if protocol == "h2" else False)

    async def get(url: str) -> bytes:
        response = await client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        return response.content

    return get, client.aclose


async def make_httpx(protocol: str, tasks: int) -> tuple[Any, Any]:
    import httpx

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    client = httpx.AsyncClient(http1=protocol == "h1", http2=protocol == "h2", limits=limits)

    async def get(url: str) -> bytes:
        response = await client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        return response.content

    return get, client.aclose


async def make_aiohttp(protocol: str, tasks: int) -> tuple[Any, Any]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def get(url: str) -> bytes:
        async with session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            return await response.read()

    return get, session.close


async def make_niquests(protocol: str, tasks: int) -> tuple[Any, Any]:
    import niquests

    # disable_http1 on plain http: HTTP/2 with prior knowledge (h2c).
    session = niquests.AsyncSession(pool_connections=10, pool_maxsize=100,
                                    disable_http1=protocol == "h2",
                                    disable_http2=protocol == "h1")

    async def get(url: str) -> bytes:
        response = await session.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        return response.content

    async def close() -> None:
        await session.close()

    return get, close


async def make_bare(protocol: str, tasks: int) -> tuple[Any, Any]:
    import httptools

    loop = asyncio.get_running_loop()

    class Bare(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.body: list[bytes] = []
            self.future: asyncio.Future[bytes] | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            body, self.body = b"".join(self.body), []
            self.future.set_result(body)  # type: ignore[union-attr]

    idle: list[Bare] = []
    request = b""

    async def get(url: str) -> bytes:
        nonlocal request
        if idle:
            connection = idle.pop()
        else:
            host, _, rest = url.split("://", 1)[1].partition("/")
            name, port = host.split(":")
            request = f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            connection = (await loop.create_connection(Bare, name, int(port)))[1]
        connection.future = loop.create_future()
        connection.transport.write(request)
        body = await connection.future
        idle.append(connection)
        return body

    async def close() -> None:
        for connection in idle:
            connection.transport.close()

    return get, close


MAKERS = {"qactuar": make_qactuar, "httpx": make_httpx, "aiohttp": make_aiohttp,
          "niquests": make_niquests, "bare": make_bare}


# -- one measurement (a child process) -------------------------------------------------
async def measure(client: str, protocol: str, tasks: int, url: str,
                  profile: str | None) -> dict[str, Any]:
    get, close = await MAKERS[client](protocol, tasks)
    try:
        await asyncio.gather(*[get(url) for _ in range(min(tasks, 50))])
        for _ in range(WARM_UP // tasks + 1):
            await asyncio.gather(*[get(url) for _ in range(tasks)])
        done = 0
        wrong = 0
        stop = False
        started_cpu = time.process_time()
        started_wall = time.perf_counter()

        async def worker() -> None:
            nonlocal done, wrong, stop
            while not stop:
                body = await get(url)
                done += 1
                if body != BODY:
                    wrong += 1
                if done % 256 == 0 and (time.process_time() - started_cpu >= MIN_CPU_SECONDS
                                        or done >= MAX_REQUESTS):
                    stop = True

        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        await asyncio.gather(*[worker() for _ in range(tasks)])
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu = time.process_time() - started_cpu
        wall = time.perf_counter() - started_wall
    finally:
        await close()
    return {"client": client, "protocol": protocol, "tasks": tasks, "requests": done,
            "wrong": wrong, "cpu_seconds": cpu, "per_cpu_second": done / cpu,
            "per_second": done / wall}


def child_main(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.cpu})
    import uvloop

    result = uvloop.run(measure(args.client, args.protocol, args.tasks, args.url,
                                args.profile_path))
    print(json.dumps(result))


# -- the run (parent) ------------------------------------------------------------------
def start_server(cpu: int) -> tuple[subprocess.Popen[str], str]:
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("QACTUAR_")}
    env["PYTHONPATH"] = str(root)
    server = subprocess.Popen(
        [sys.executable, "-m", "qactuar", "benchmarks.apps:hello", "--host", "127.0.0.1",
         "--port", "0", "--http2", "on"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=root)
    assert server.stdout is not None
    for line in server.stdout:
        if "Listening on" in line:
            address = line.split("Listening on ", 1)[1].split()[0]
            os.sched_setaffinity(server.pid, {cpu})
            # Keep reading what it prints, or a full pipe would stall it.
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return server, address
    raise RuntimeError("the server did not start")


def run_child(client: str, protocol: str, tasks: int, url: str, cpu: int,
              profile: str | None = None) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "benchmarks.client", "--child", "--client", client,
               "--protocol", protocol, "--tasks", str(tasks), "--url", url, "--cpu", str(cpu)]
    if profile:
        command += ["--profile-path", profile]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        print(f"  {client} {protocol} x{tasks}: no result within 120 s", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"  {client} {protocol} x{tasks}: failed: "
              f"{(done.stderr.strip().splitlines() or ['?'])[-1]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict[tuple[str, str, int], list[float]]) -> str:
    lines = ["| client | protocol | 1 task | 50 tasks | 50 vs 1 | vs qactuar (1 / 50) |",
             "|---|---|---:|---:|---:|---:|"]
    for protocol in ("h1", "h2"):
        base = {t: statistics.median(results.get(("qactuar", protocol, t)) or [0])
                for t in (1, 50)}
        for client in CLIENTS:
            if not any((client, protocol, t) in results for t in (1, 50)):
                continue
            medians = {t: statistics.median(results.get((client, protocol, t)) or [0])
                       for t in (1, 50)}
            change = (f"{medians[50] / medians[1] - 1:+.0%}" if medians[1] else "n/a")
            ratios = " / ".join(f"{medians[t] / base[t]:.2f}" if base[t] and medians[t]
                                else "n/a" for t in (1, 50))
            name = "HTTP/1.1" if protocol == "h1" else "HTTP/2 (h2c)"
            lines.append(f"| {client} | {name} | {medians[1]:,.0f} | {medians[50]:,.0f} | "
                         f"{change} | {ratios} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--protocols", default="h1,h2")
    parser.add_argument("--tasks", default="1,50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="also write a cProfile of qactuar.client per configuration "
                             "(to the temporary directory)")
    parser.add_argument("--output", default=str(RESULTS_DIR / "client-latest.md"))
    # A child measurement (internal).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.tasks = int(args.tasks)
        child_main(args)
        return 0
    clients = [c for c in args.clients.split(",") if c]
    protocols = [p for p in args.protocols.split(",") if p]
    task_counts = [int(t) for t in args.tasks.split(",")]
    server, address = start_server(args.server_cpu)
    url = f"{address}/"
    results: dict[tuple[str, str, int], list[float]] = {}
    try:
        for round_number in range(1, args.rounds + 1):
            for protocol in protocols:
                for tasks in task_counts:
                    for client in clients:
                        if protocol not in PROTOCOLS.get(client, []):
                            continue
                        profile = None
                        if args.profile and client == "qactuar" and round_number == 1:
                            profile = os.path.join(tempfile.gettempdir(),
                                                   f"qactuar-client-{protocol}-{tasks}.prof")
                            print(f"  cProfile of this run: {profile}", file=sys.stderr)
                        result = run_child(client, protocol, tasks, url, args.client_cpu,
                                           profile)
                        if result is None:
                            continue
                        if result["wrong"]:
                            print(f"  {client}: {result['wrong']} wrong answers",
                                  file=sys.stderr)
                        results.setdefault((client, protocol, tasks), []).append(
                            result["per_cpu_second"])
                        print(f"round {round_number} {client:9} {protocol} x{tasks:<3} "
                              f"{result['per_cpu_second']:>9,.0f} req/CPU-s "
                              f"({result['per_second']:,.0f} req/s wall)", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    table = report(results)
    print(table)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(
        "# qactuar.client: requests per client CPU-second\n\n"
        f"Median of {args.rounds} rounds; client on CPU {args.client_cpu}, Qactuar "
        f"(benchmarks.apps:hello) on CPU {args.server_cpu}; `python -m benchmarks.client`.\n\n"
        + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

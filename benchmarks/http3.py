"""`python -m benchmarks.http3`: HTTP/3 requests per second, Qactuar beside hypercorn,
and UDP echo datagrams per second.

Each round runs every server once (A B A B ...), with one and with four workers, under
the same load: `--clients` processes of an aioquic-based load client, each holding
`--connections` connections with `--streams` requests in flight on each, for
`--duration` seconds, against the hello app of benchmarks/apps.py.  Then `--fresh`
new connections, ten at a time, each making one request: the count that failed
(hypercorn's open issue: most fail with several workers).  Figures on a shared machine
are noisy: compare the servers within one run, as ratios.

UDP: one client process sends `--udp-burst` datagrams at a time to Qactuar's UDP echo
(tests' apps.h3_app would do; here benchmarks/apps.py's `udp_echo`) and waits for their
echoes, for `--duration` seconds; no other server implements ASGI over UDP.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PORT_LINE = {"qactuar": re.compile(r"HTTP/3 \(QUIC\) on udp://[\d.]+:(\d+)"),
             "hypercorn": re.compile(r"Running on https://[\d.]+:(\d+) \(QUIC\)")}


def _tls(folder: Path) -> tuple[str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(name: str, workers: int, cert: str, key: str, udp: bool = False
                 ) -> tuple[subprocess.Popen[str], int]:
    """Start one server; (its process, its QUIC or UDP port)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if name == "qactuar":
        command = [sys.executable, "-m", "qactuar", "benchmarks.apps:hello", "--host",
                   "127.0.0.1", "--port", "0", "--no-access-log", "--ssl-cert-path", cert,
                   "--ssl-key-path", key]
        if workers > 1:
            command += ["--model", "prefork", "--workers", str(workers)]
        if udp:
            env["QACTUAR_UDP_BINDS"] = "127.0.0.1:0"
            command[3] = "benchmarks.apps:udp_echo"
        else:
            env["QACTUAR_QUIC_BIND"] = "127.0.0.1:0"
        pattern = (re.compile(r"UDP app on udp://[\d.]+:(\d+)") if udp
                   else PORT_LINE["qactuar"])
    else:
        port = _free_udp_port()
        command = [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}",
                   "--quic-bind", f"127.0.0.1:{port}", "--certfile", cert, "--keyfile", key,
                   "--workers", str(workers), "--worker-class", "uvloop",
                   "--log-level", "info", "benchmarks.apps:hello"]
        pattern = PORT_LINE["hypercorn"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = pattern.search(line)
        if match:
            time.sleep(0.5 if workers == 1 else 1.5)  # the other workers come up
            return process, int(match.group(1))
    stop_server(process)
    raise RuntimeError(f"{name} did not start")


def stop_server(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- the load client (one process) ---------------------------------------------------------

async def _connection(port: int, streams: int, until: float, counts: dict[str, int]) -> None:
    from benchmarks.h3client import connect_h3

    try:
        client = await connect_h3(port)
    except Exception:
        counts["failed_connections"] += 1
        return
    async with client:
        async def worker() -> None:
            while time.monotonic() < until:
                try:
                    status = await client.get("/")
                except Exception:
                    counts["errors"] += 1
                    return
                counts["ok" if status == 200 else "errors"] += 1
        await asyncio.gather(*(worker() for _ in range(streams)))


def _load_process(port: int, connections: int, streams: int, duration: float,
                  results: Any) -> None:
    counts = {"ok": 0, "errors": 0, "failed_connections": 0}

    async def main() -> None:
        until = time.monotonic() + duration
        await asyncio.gather(*(_connection(port, streams, until, counts)
                               for _ in range(connections)))

    asyncio.run(main())
    results.put(counts)


def measure_requests(port: int, clients: int, connections: int, streams: int,
                     duration: float) -> dict[str, float]:
    results: Any = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_load_process,
                                       args=(port, connections, streams, duration, results))
               for _ in range(clients)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    totals = {"ok": 0, "errors": 0, "failed_connections": 0}
    for _ in workers:
        for key, value in results.get(timeout=duration + 60).items():
            totals[key] += value
    for worker in workers:
        worker.join()
    elapsed = max(time.monotonic() - started, duration)
    return {**totals, "rps": totals["ok"] / duration, "elapsed": elapsed}


def measure_fresh(port: int, count: int) -> int:
    """Fresh connections, ten at a time, one request each: how many failed."""
    from benchmarks.h3client import connect_h3

    async def one() -> bool:
        try:
            async with asyncio.timeout(10):
                client = await connect_h3(port)
                async with client:
                    return await client.get("/") == 200
        except Exception:
            return False

    async def main() -> int:
        failed = 0
        for start in range(0, count, 10):
            done = await asyncio.gather(*(one() for _ in range(min(10, count - start))))
            failed += done.count(False)
        return failed

    return asyncio.run(main())


def measure_udp(port: int, duration: float, burst: int) -> dict[str, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1)
    sent = received = 0
    until = time.monotonic() + duration
    try:
        while time.monotonic() < until:
            for index in range(burst):
                sock.sendto(b"d%d" % index, ("127.0.0.1", port))
            sent += burst
            for _ in range(burst):
                try:
                    sock.recv(100)
                except TimeoutError:
                    break
                received += 1
    finally:
        sock.close()
    return {"sent": sent, "received": received, "dps": received / duration}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http3")
    parser.add_argument("--servers", default="qactuar,hypercorn")
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--connections", type=int, default=4, help="per client process")
    parser.add_argument("--streams", type=int, default=8, help="in flight per connection")
    parser.add_argument("--fresh", type=int, default=50)
    parser.add_argument("--udp-burst", type=int, default=50)
    args = parser.parse_args(argv)
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    worker_counts = [int(n) for n in args.workers.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="qactuar-h3-bench-"))
    cert, key = _tls(folder)
    rows: dict[tuple[str, int], list[dict[str, float]]] = {}
    for workers in worker_counts:
        for _ in range(args.rounds):
            for name in servers:
                process, port = start_server(name, workers, cert, key)
                try:
                    result = measure_requests(port, args.clients, args.connections,
                                              args.streams, args.duration)
                    result["fresh_failed"] = measure_fresh(port, args.fresh)
                finally:
                    stop_server(process)
                rows.setdefault((name, workers), []).append(result)
                print(f"{name} workers={workers}: {result['rps']:.0f} req/s, "
                      f"{result['errors']:.0f} errors, {result['failed_connections']:.0f} "
                      f"failed connections, fresh: {result['fresh_failed']:.0f} of "
                      f"{args.fresh} failed", flush=True)
    print("\nmedian of rounds (noisy; compare within this run):")
    for (name, workers), results in rows.items():
        rps = sorted(r["rps"] for r in results)[len(results) // 2]
        failed = sum(r["fresh_failed"] + r["failed_connections"] for r in results)
        print(f"  {name:9} workers={workers}: {rps:7.0f} req/s   failed connections: "
              f"{failed:.0f}")
    if "qactuar" in servers:
        process, port = start_server("qactuar", 1, cert, key, udp=True)
        try:
            udp = measure_udp(port, args.duration, args.udp_burst)
        finally:
            stop_server(process)
        print(f"  qactuar UDP echo: {udp['dps']:.0f} datagrams/s echoed, "
              f"{udp['sent'] - udp['received']:.0f} of {udp['sent']:.0f} lost "
              f"(bursts of {args.udp_burst}, below the queue bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

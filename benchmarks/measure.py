"""One measurement of one server in one round, per scenario kind.

Each function starts the server (pinned unless the scenario says otherwise),
waits until it answers (and, with several workers, until each worker has
logged that it listens), verifies one answer, measures, and
stops it, returning a dict of metrics. Failures raise `ServerFailed`, which the
runner records as FAILED for that server. This module must not aggregate
rounds or print tables (that is `report.py`).
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import h2load, qload, tls_cert, wrk, wsload
from benchmarks.process import ServerFailed, ServerProcess, byte_compile, cpu_list
from benchmarks.scenarios import Scenario
from benchmarks.servers import ServerSpec

IDLE_CONNECTIONS = 5000


@dataclass(frozen=True)
class Settings:
    """What the command line chose for this run."""

    seconds: int
    warmup_seconds: int
    server_cpu: str
    load_cpu: str
    load_threads: int = 1
    connections: int = IDLE_CONNECTIONS
    startup_samples: int = 5  # starts per round: single starts spread by 40 % on a shared VM
    load_tool: str = "qactuar"  # HTTP/1.1 scenarios: "qactuar" (qactuar load) or "wrk"


def _cpus(scenario: Scenario, settings: Settings) -> tuple[str, int, str, int]:
    """Server CPU list and count, load CPU list and count (threads) for this scenario."""
    if scenario.pinned:
        return (settings.server_cpu, len(cpu_list(settings.server_cpu)),
                settings.load_cpu, settings.load_threads)
    every = sorted(os.sched_getaffinity(0) | set(cpu_list(settings.server_cpu)))
    text = ",".join(map(str, every))
    return text, len(every), text, len(every)


def _started(server: ServerProcess, scenario: Scenario) -> None:
    server.wait_ready()
    if scenario.variant.workers > 1:
        server.wait_listening(scenario.variant.workers)
    scenario.verify(server.port)


def measure_wrk(spec: ServerSpec, scenario: Scenario, settings: Settings,
                label: str) -> dict[str, float]:
    """Requests/s and latency percentiles under the HTTP/1.1 load tool (`qactuar load`, or
    wrk with `--load-tool wrk`), after a warm-up run."""
    tool = scenario.load_tool or settings.load_tool
    script: Path | None = (wrk.post_script(scenario.post_body_size)
                           if scenario.post_body_size and tool == "wrk" else None)
    server_cpus, server_cpu_count, load_cpus, load_threads = _cpus(scenario, settings)
    options = {"connections": scenario.wrk_connections,
               "timeout_seconds": scenario.wrk_timeout_seconds, "headers": scenario.wrk_headers}
    if tool == "wrk":
        def load(*args: Any, **kwargs: Any) -> wrk.WrkResult:
            return wrk.run_wrk(*args, script, **kwargs)
    else:  # qactuar load: the body is a file it writes itself
        def load(*args: Any, **kwargs: Any) -> wrk.WrkResult:
            return qload.run_qactuar_load(*args, scenario.post_body_size, **kwargs)
    try:
        with ServerProcess(spec, scenario.app, server_cpus, label, scenario.variant) as server:
            _started(server, scenario)
            url = f"http://127.0.0.1:{server.port}/"
            if settings.warmup_seconds > 0:
                load(url, settings.warmup_seconds, load_cpus, load_threads, **options)
            server_cpu_before = server.cpu_seconds()
            result = load(url, settings.seconds, load_cpus, load_threads, **options)
            server_cpu = server.cpu_seconds() - server_cpu_before
            server.check_alive()
            scenario.verify(server.port)  # still answering correctly after the load
    finally:
        if script is not None:
            script.unlink(missing_ok=True)
    problems = result.errors()
    if problems:
        raise ServerFailed(f"{spec.name}: {', '.join(problems)}")
    return {"rps": result.requests_per_second, "p50_ms": result.latency_ms.get("50", 0.0),
            "p99_ms": result.latency_ms.get("99", 0.0), "requests": result.requests,
            # How busy each side was, in % of the CPUs it was given: a server well
            # under 100% shared its CPU with something else; a load tool near 100%
            # per thread was the bottleneck.
            "server_cpu_pct": 100 * server_cpu / settings.seconds / server_cpu_count,
            "load_cpu_pct": 100 * result.cpu_seconds / settings.seconds / load_threads,
            # Requests per second of server CPU: steadier than req/s on a shared machine.
            "requests_per_cpu_s": result.requests / server_cpu if server_cpu else 0.0}


def measure_h2(spec: ServerSpec, scenario: Scenario, settings: Settings,
               label: str) -> dict[str, float]:
    """Requests/s over HTTP/2 (h2c, prior knowledge; or https with ALPN h2 for a TLS
    variant) under h2load, after a warm-up run.

    h2load reports request time as min/max/mean/sd: the mean and the max are
    kept, there is no p50 or p99. Server CPU covers the measured h2load run.
    """
    server_cpus, server_cpu_count, load_cpus, load_threads = _cpus(scenario, settings)
    if scenario.variant.tls:
        tls_cert.ensure()
    with ServerProcess(spec, scenario.app, server_cpus, label, scenario.variant) as server:
        _started(server, scenario)
        scheme = "https" if scenario.variant.tls else "http"
        url = f"{scheme}://127.0.0.1:{server.port}/"
        if settings.warmup_seconds > 0:
            h2load.run_h2load(url, settings.warmup_seconds, load_cpus, load_threads)
        server_cpu_before = server.cpu_seconds()
        result = h2load.run_h2load(url, settings.seconds, load_cpus, load_threads)
        server_cpu = server.cpu_seconds() - server_cpu_before
        server.check_alive()
        scenario.verify(server.port)  # still answering correctly after the load
    problems = result.errors()
    if problems:
        raise ServerFailed(f"{spec.name}: {', '.join(problems)}")
    return {"rps": result.requests_per_second, "mean_ms": result.mean_ms,
            "max_ms": result.max_ms, "requests": result.requests,
            "server_cpu_pct": 100 * server_cpu / result.wall_seconds / server_cpu_count,
            "load_cpu_pct": 100 * result.cpu_seconds / result.wall_seconds / load_threads,
            "requests_per_cpu_s": result.requests / server_cpu if server_cpu else 0.0}


def measure_ws(spec: ServerSpec, scenario: Scenario, settings: Settings,
               label: str) -> dict[str, float]:
    """WebSocket echo messages/s under wsload (which warms up 1 s by itself).

    msg/s is wsload's measured window; server CPU and msg/CPU-s cover its whole
    run (connect, upgrade, warm-up, window) and every echo in it, so that
    the CPU time and the messages are counted over the same span.
    """
    server_cpus, server_cpu_count, load_cpus, _ = _cpus(scenario, settings)
    wsload.build()  # before the server starts: a compile error fails fast, off the clock
    with ServerProcess(spec, scenario.app, server_cpus, label, scenario.variant) as server:
        _started(server, scenario)
        server_cpu_before = server.cpu_seconds()
        result = wsload.run_wsload(server.port, scenario.ws_connections,
                                   scenario.ws_message_size, settings.seconds, load_cpus)
        server_cpu = server.cpu_seconds() - server_cpu_before
        server.check_alive()
        scenario.verify(server.port)  # still echoing correctly after the load
    if result.messages == 0:
        raise ServerFailed(f"{spec.name}: no message echoed")
    return {"mps": result.messages_per_second, "messages": result.messages,
            "server_cpu_pct": 100 * server_cpu / result.wall_seconds / server_cpu_count,
            # wsload is one thread: near 100% means it, not the server, was the limit.
            "load_cpu_pct": 100 * result.cpu_seconds / result.wall_seconds,
            "messages_per_cpu_s": result.messages / server_cpu if server_cpu else 0.0}


def measure_memory(spec: ServerSpec, scenario: Scenario, settings: Settings,
                   label: str) -> dict[str, float]:
    """Server RSS growth per idle keep-alive connection that has made one request."""
    with ServerProcess(spec, scenario.app, settings.server_cpu, label) as server:
        server.wait_ready()
        scenario.verify(server.port)
        before = _stable_rss(server)
        sockets: list[socket.socket] = []
        try:
            try:
                for _ in range(settings.connections):
                    sockets.append(_one_request_kept_open(server.port))
            except OSError as error:
                raise ServerFailed(f"{spec.name}: opening idle connection {len(sockets) + 1}"
                                   f": {error!r}") from error
            server.check_alive()
            after = _stable_rss(server)
            closed = sum(not _still_open(sock) for sock in sockets)
            if closed:
                raise ServerFailed(f"{spec.name}: {closed} of {len(sockets)} idle connections "
                                   "were closed during the measurement")
        finally:
            for sock in sockets:
                sock.close()
    return {"bytes_per_conn": (after - before) / settings.connections,
            "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20}


def measure_startup(spec: ServerSpec, scenario: Scenario, settings: Settings,
                    label: str) -> dict[str, float]:
    """Seconds from Popen to the first 200 answer; the median of a few starts.

    Each server starts as installed: with the bytecode of its Python files (see
    `byte_compile`), compiled by the interpreter it runs under."""
    byte_compile(spec.command(scenario.app, 0, scenario.variant)[0], spec.source)
    samples = []
    for sample in range(settings.startup_samples):
        with ServerProcess(spec, scenario.app, settings.server_cpu,
                           f"{label}-{sample}") as server:
            samples.append(server.wait_ready(timeout=60))
            scenario.verify(server.port)
    return {"startup_ms": statistics.median(samples) * 1000}


def _one_request_kept_open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        received = b""
        while not received.endswith(b"Hello, world!"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ServerFailed(f"connection {port} closed before its answer: {received!r}")
            received += chunk
    except BaseException:
        sock.close()
        raise
    return sock


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""  # b"": the server closed it
    except BlockingIOError:
        return True
    except OSError:
        return False


def _stable_rss(server: ServerProcess, timeout: float = 20.0) -> int:
    """RSS once two readings 0.5 s apart agree within 1% (or the last one at the deadline)."""
    deadline = time.monotonic() + timeout
    previous = server.rss_bytes()
    while True:
        time.sleep(0.5)
        current = server.rss_bytes()
        if abs(current - previous) <= previous * 0.01 or time.monotonic() > deadline:
            return current
        previous = current


Measurement = Callable[[ServerSpec, Scenario, Settings, str], dict[str, float]]

MEASUREMENTS: dict[str, Measurement] = {
    "wrk": measure_wrk,
    "h2": measure_h2,
    "ws": measure_ws,
    "memory": measure_memory,
    "startup": measure_startup,
}

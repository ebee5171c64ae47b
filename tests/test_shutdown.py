"""Graceful shutdown on SIGTERM and SIGINT, bounded by SHUTDOWN_TIMEOUT.

On the first signal the server stops listening, closes idle connections,
lets in-flight requests finish, runs the lifespan shutdown and exits 0.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from apps.lifespan_apps import EVENTS_VAR
from conftest import (
    ServerFactory,
    ServerProcess,
    file_lines,
    read_response,
    recv_until_closed,
    wait_until,
)


def start_sleeping_request(server: ServerProcess, events_file: Path,
                           seconds: float) -> socket.socket:
    """Send /sleep?s=SECONDS and return once the app is running it."""
    sock = server.connect(timeout=10)
    sock.sendall(f"GET /sleep?s={seconds} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    wait_until(lambda: "main request /sleep" in file_lines(events_file),
               what="the app to start the slow request")
    return sock


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(start_server: ServerFactory, tmp_path: Path, signum: int) -> None:
    events_file = tmp_path / "events.txt"
    # Long idle timeouts: here only the shutdown may close an idle connection.
    server = start_server("apps.lifespan_apps:app", "--keep-alive-timeout", "120",
                          "--header-timeout", "120", env={EVENTS_VAR: str(events_file)})

    idle = server.connect()
    idle.sendall(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
    status, _, body = read_response(idle)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert body == b"main: /hello"
    silent = server.connect()  # connected, never sent a byte
    busy = start_sleeping_request(server, events_file, 1)

    server.send_signal(signum)
    server.wait_for_log("Shutting down")

    # Idle connections are closed at once...
    assert recv_until_closed(idle, timeout=5) == b""
    assert recv_until_closed(silent, timeout=5) == b""
    # ...the listener is gone, so new connections are refused...
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5).close()
    # ...and the request in flight is answered in full, then its connection closed.
    status, _, body = read_response(busy, timeout=10)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert body == b"slept"
    assert recv_until_closed(busy, timeout=5) == b""

    assert server.proc.wait(timeout=15) == 0, server.output
    events = file_lines(events_file)
    assert events[-2:] == ["main done /sleep", "main shutdown"], events
    assert events.count("main shutdown") == 1


@pytest.mark.models("async", "prefork", "postfork")
def test_shutdown_timeout_bounds_the_wait(start_server: ServerFactory, tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    server = start_server("apps.lifespan_apps:app", "--shutdown-timeout", "0.5",
                          "--request-timeout", "60", env={EVENTS_VAR: str(events_file)})
    busy = start_sleeping_request(server, events_file, 30)

    server.send_signal(signal.SIGTERM)
    # Well before the request's 30 seconds are up, the server is gone...
    try:
        code = server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"server still waiting for the request:\n{server.output}") from None
    assert code == 0, server.output
    # ...and the client's connection was closed without an answer.
    data = recv_until_closed(busy, timeout=5)
    assert b"slept" not in data
    assert not data.startswith(b"HTTP/1.1 200")
    events = file_lines(events_file)
    assert "main done /sleep" not in events
    assert events[-1] == "main shutdown", events


@pytest.mark.models("async", "prefork", "postfork")
def test_a_second_signal_stops_waiting(start_server: ServerFactory, tmp_path: Path) -> None:
    events_file = tmp_path / "events.txt"
    server = start_server("apps.lifespan_apps:app", "--request-timeout", "60",
                          env={EVENTS_VAR: str(events_file)})  # SHUTDOWN_TIMEOUT is 30 s
    busy = start_sleeping_request(server, events_file, 30)

    server.send_signal(signal.SIGTERM)
    server.wait_for_log("Shutting down")
    server.send_signal(signal.SIGINT)
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the second signal was ignored:\n{server.output}") from None
    data = recv_until_closed(busy, timeout=5)
    assert b"slept" not in data


def test_a_request_still_arriving_at_shutdown_is_answered(start_server: ServerFactory) -> None:
    # As in a prefork reload under load: a worker stops listening while a
    # client it accepted is halfway through sending its request head.
    server = start_server("apps.basic:app", "--header-timeout", "30")
    arriving = server.connect(timeout=10)
    arriving.sendall(b"GET /hello HTTP/1.1\r\n")
    # Connections are accepted in order: once a later one is answered, `arriving` is ours.
    with server.connect() as later:
        later.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_response(later)[0].startswith(b"HTTP/1.1 200")
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("Shutting down")
    arriving.sendall(b"Host: t\r\n\r\n")
    status, headers, body = read_response(arriving, timeout=10)
    assert (status, body) == (b"HTTP/1.1 200 OK", b"Hello, world!")
    assert headers[b"connection"] == b"close"
    arriving.close()
    assert server.stop() == 0


@pytest.mark.parametrize("args", [[], ["--model", "prefork", "--workers", "1"],
                                  ["--model", "postfork"]],
                         ids=["async", "prefork", "postfork"])
def test_signals_repeated_until_exit_still_exit_0(start_server: ServerFactory,
                                                   args: list[str]) -> None:
    # An operator (or a supervisor such as systemd) repeating SIGTERM: one that
    # lands after serving ended, while the process is exiting, must not turn
    # a clean exit into death by signal.
    server = start_server("apps.basic:app", *args)
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("Shutting down")
    while server.proc.poll() is None:
        server.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    assert server.proc.returncode == 0, server.output

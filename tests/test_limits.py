"""Size limits (413, 414, 431), timeouts (408, keep-alive, 504) and LIMIT_CONCURRENCY (503).

Each group of settings gets one module-scoped server started with small limits
on the command line; the tests talk to it over raw sockets.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import ServerProcess, file_lines, read_response, recv_until_closed, wait_until
from request_tables import (
    OVER_LIMITS,
    OVER_LIMITS_MID_REQUEST,
    PIPELINED,
    SMALL_LIMITS,
    WITHIN_LIMITS,
    check_refused_alone,
    cli_flags,
)

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models


def _server(*flags: str) -> ServerProcess:
    return ServerProcess(["apps.misbehaving:app", "--host", "127.0.0.1", "--port", "0", *flags])


@pytest.fixture(scope="module")
def small_limits() -> Iterator[ServerProcess]:
    server = _server(*cli_flags(SMALL_LIMITS))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def short_timeouts() -> Iterator[ServerProcess]:
    server = _server("--header-timeout", "0.5", "--keep-alive-timeout", "0.5",
                     "--request-timeout", "0.5")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def one_at_a_time() -> Iterator[ServerProcess]:
    server = _server("--limit-concurrency", "1")
    yield server
    server.stop()


def _exchange(server: ServerProcess, request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    with server.connect() as sock:
        sock.sendall(request)
        return read_response(sock)


# -- MAX_BODY_SIZE, MAX_URL_SIZE, MAX_HEADER_SIZE, MAX_HEADER_COUNT -----------------------


@pytest.mark.parametrize(("request_bytes", "status"), OVER_LIMITS)
def test_over_a_limit_is_refused_and_nothing_after_it_is_read(
        small_limits: ServerProcess, request_bytes: bytes, status: int) -> None:
    with small_limits.connect() as sock:
        sock.sendall(request_bytes + PIPELINED)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    check_refused_alone([(status_line, headers, b"")], rest, status)


@pytest.mark.parametrize(("request_bytes", "status"), OVER_LIMITS_MID_REQUEST)
def test_over_a_limit_is_refused_before_the_request_ends(
        small_limits: ServerProcess, request_bytes: bytes, status: int) -> None:
    with small_limits.connect() as sock:
        sock.sendall(request_bytes)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    check_refused_alone([(status_line, headers, b"")], rest, status)


@pytest.mark.parametrize(("request_bytes", "body"), WITHIN_LIMITS)
def test_within_the_limits_is_served(small_limits: ServerProcess, request_bytes: bytes,
                                     body: bytes) -> None:
    status_line, _, echoed = _exchange(small_limits, request_bytes)
    assert status_line == b"HTTP/1.1 200 OK"
    assert echoed == body


# -- HEADER_TIMEOUT --------------------------------------------------------------------


def test_stalled_request_head_gets_408(short_timeouts: ServerProcess) -> None:
    with short_timeouts.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head stalls
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    assert status_line.startswith(b"HTTP/1.1 408 "), status_line
    assert headers.get(b"connection") == b"close"
    assert rest == b""


def test_trickled_request_head_is_cut_at_the_header_timeout(
        short_timeouts: ServerProcess) -> None:
    """Slowloris: a byte every 0.05 s never finishes the head; the timer is not reset."""
    with short_timeouts.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        deadline = time.monotonic() + 10
        answered = False
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                answered = True
                break
            try:
                sock.sendall(b"s")
            except OSError:
                answered = True
                break
        assert answered, "the server kept reading a request head for 10 s"
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data


def test_connection_that_sends_nothing_is_closed(short_timeouts: ServerProcess) -> None:
    with short_timeouts.connect() as sock:
        data = recv_until_closed(sock, timeout=10)  # raises socket.timeout if never closed
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data


# -- KEEP_ALIVE_TIMEOUT ----------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed(short_timeouts: ServerProcess) -> None:
    with short_timeouts.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line, headers, _ = read_response(sock)
        assert status_line == b"HTTP/1.1 200 OK"
        assert headers.get(b"connection") != b"close"
        assert recv_until_closed(sock, timeout=10) == b""


def test_busy_keep_alive_connection_stays_open(short_timeouts: ServerProcess) -> None:
    """Requests 0.1 s apart for three times the keep-alive timeout, all on one connection."""
    with short_timeouts.connect() as sock:
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < 1.5:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line, headers, body = read_response(sock)
            assert status_line == b"HTTP/1.1 200 OK", f"request {count}"
            assert body == b"Hello, world!"
            assert headers.get(b"connection") != b"close"
            count += 1
            time.sleep(0.1)  # pacing between requests, shorter than the keep-alive timeout
    assert count >= 3


# -- REQUEST_TIMEOUT -------------------------------------------------------------------


def _wait_for_file(path: Path, timeout: float = 10) -> str:
    wait_until(lambda: bool(file_lines(path)), timeout, f"{path} to be written")
    return path.read_text()


def test_app_that_does_not_start_in_time_gets_504(short_timeouts: ServerProcess) -> None:
    status_line, _, body = _exchange(short_timeouts,
                                     b"GET /sleep?s=5 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 504 "), status_line
    assert body != b"slept"


def test_timed_out_app_task_is_cancelled(short_timeouts: ServerProcess, tmp_path: Path) -> None:
    marker, started = tmp_path / "cancelled", tmp_path / "started"
    target = f"/cancellable?file={quote(str(marker))}&started={quote(str(started))}".encode()
    status_line, _, _ = _exchange(short_timeouts,
                                  b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
    assert status_line.startswith(b"HTTP/1.1 504 "), status_line
    assert _wait_for_file(started) == "started"
    assert _wait_for_file(marker) == "cancelled"


def test_started_response_is_not_cut_by_request_timeout(short_timeouts: ServerProcess) -> None:
    # Six chunks 0.25 s apart: the response takes three times REQUEST_TIMEOUT.
    with short_timeouts.connect() as sock:
        sock.sendall(b"GET /slow-stream?n=6&delay=0.25 HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line, _, body = read_response(sock, timeout=10)  # ConnectionError if cut
    assert status_line == b"HTTP/1.1 200 OK"
    assert body == b"".join(b"part-%d\n" % i for i in range(6))


# -- LIMIT_CONCURRENCY -----------------------------------------------------------------


def test_request_over_concurrency_limit_gets_503(one_at_a_time: ServerProcess,
                                                 tmp_path: Path) -> None:
    started = tmp_path / "started"
    with one_at_a_time.connect() as first:
        first.sendall(b"GET /marked-sleep?s=1.5&started=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                      % quote(str(started)).encode())
        _wait_for_file(started)  # the first request is in flight
        status_line, _, _ = _exchange(one_at_a_time, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_line.startswith(b"HTTP/1.1 503 "), status_line
        status_line, _, body = read_response(first, timeout=10)
        assert status_line == b"HTTP/1.1 200 OK"
        assert body == b"slept"
    # The first request is answered: the slot is free again.
    status_line, _, body = _exchange(one_at_a_time, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line == b"HTTP/1.1 200 OK"
    assert body == b"Hello, world!"


def test_sequential_requests_under_concurrency_limit_succeed(
        one_at_a_time: ServerProcess) -> None:
    """One request at a time never exceeds a limit of one: a request sent after the
    previous response has arrived must not be refused."""
    with one_at_a_time.connect() as sock:
        for i in range(50):
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line, _, body = read_response(sock)
            assert status_line == b"HTTP/1.1 200 OK", f"request {i}: {status_line!r}"
            assert body == b"Hello, world!"

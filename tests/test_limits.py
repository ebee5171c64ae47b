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

from conftest import ServerProcess, read_response, recv_until_closed

PIPELINED = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


def _server(*flags: str) -> ServerProcess:
    return ServerProcess(["apps.misbehaving:app", "--host", "127.0.0.1", "--port", "0", *flags])


@pytest.fixture(scope="module")
def small_limits() -> Iterator[ServerProcess]:
    server = _server("--max-body-size", "1000", "--max-url-size", "100",
                     "--max-header-size", "1000", "--max-header-count", "10",
                     "--header-timeout", "3")
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


def _refused_alone(server: ServerProcess, request: bytes, status: int) -> None:
    """`request` is refused with `status`, and a request pipelined behind it is never read."""
    with server.connect() as sock:
        sock.sendall(request + PIPELINED)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    assert status_line.startswith(b"HTTP/1.1 %d " % status), status_line
    assert headers.get(b"connection") == b"close"
    assert rest == b""


def _exchange(server: ServerProcess, request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    with server.connect() as sock:
        sock.sendall(request)
        return read_response(sock)


def _chunked(*chunks: bytes, end: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return body + (b"0\r\n\r\n" if end else b"")


# -- MAX_BODY_SIZE ---------------------------------------------------------------------


def test_content_length_over_limit_is_413_before_the_body(small_limits: ServerProcess) -> None:
    # Only the head is sent: the answer must not wait for the body.
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    with small_limits.connect() as sock:
        sock.sendall(head)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line
    assert headers.get(b"connection") == b"close"
    assert rest == b""


def test_content_length_over_limit_with_pipelined_request(small_limits: ServerProcess) -> None:
    _refused_alone(small_limits,
                   b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413)


def test_body_within_limit_is_accepted(small_limits: ServerProcess) -> None:
    body = b"b" * 900
    status_line, _, echoed = _exchange(
        small_limits, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" + body)
    assert status_line == b"HTTP/1.1 200 OK"
    assert echoed == body
    status_line, _, echoed = _exchange(
        small_limits, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _chunked(b"c" * 450, b"c" * 450))
    assert status_line == b"HTTP/1.1 200 OK"
    assert echoed == b"c" * 900


def test_chunked_body_growing_over_limit_is_413(small_limits: ServerProcess) -> None:
    # The terminating chunk is never sent: the 413 must come as soon as the limit is passed.
    request = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + _chunked(b"a" * 600, b"a" * 600, end=False))
    with small_limits.connect() as sock:
        sock.sendall(request)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line
    assert headers.get(b"connection") == b"close"
    assert rest == b""


# -- MAX_URL_SIZE, MAX_HEADER_SIZE, MAX_HEADER_COUNT --------------------------------------


def test_url_over_limit_is_414(small_limits: ServerProcess) -> None:
    target = b"/hello?q=" + b"u" * 200
    _refused_alone(small_limits, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target, 414)


def test_url_within_limit_is_accepted(small_limits: ServerProcess) -> None:
    target = b"/hello?q=" + b"u" * 40
    status_line, _, _ = _exchange(small_limits, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
    assert status_line == b"HTTP/1.1 200 OK"


def test_headers_over_size_limit_are_431(small_limits: ServerProcess) -> None:
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (b"h" * 2000)
    _refused_alone(small_limits, request, 431)


def test_many_small_headers_over_size_limit_are_431(small_limits: ServerProcess) -> None:
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 150) for i in range(8))
    _refused_alone(small_limits, b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n" % fields, 431)


def test_unfinished_header_over_size_limit_is_431(small_limits: ServerProcess) -> None:
    # A header value that never ends must not be buffered until the header timeout.
    with small_limits.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"e" * 20000)
        status_line, _, _ = read_response(sock)
    assert status_line.startswith(b"HTTP/1.1 431 "), status_line


def test_headers_within_limits_are_accepted(small_limits: ServerProcess) -> None:
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 50) for i in range(5))
    status_line, _, _ = _exchange(small_limits,
                                  b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n" % fields)
    assert status_line == b"HTTP/1.1 200 OK"


def test_too_many_headers_are_431(small_limits: ServerProcess) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(15))
    _refused_alone(small_limits, b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n" % fields, 431)


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
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} was not written within {timeout}s"
        time.sleep(0.02)
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

"""Malformed requests, request smuggling shapes and misbehaving apps, over raw sockets.

A client's mistake is answered with an error status and `connection: close`, and
nothing the client pipelined after it is ever parsed as a request.  An app's
mistake (an exception, an invalid message) becomes a 500 or an aborted
connection, never bad bytes on the wire, and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from conftest import ServerProcess, read_response, recv_until_closed
from request_tables import (
    APP_MISTAKES,
    BAD_REQUESTS,
    GOOD_THEN_BAD,
    PIPELINED,
    REFUSED_HEAD_REQUESTS,
    app_mistake_request,
    check_app_mistake,
    check_refused_alone,
    check_refused_head,
    head_of,
)

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models


def _args(*extra: str) -> list[str]:
    return ["apps.misbehaving:app", "--host", "127.0.0.1", "--port", "0", *extra]


@pytest.fixture(scope="module")
def strict_server() -> Iterator[ServerProcess]:
    """Only ever sent client mistakes, so its output can be checked for tracebacks.

    A short REQUEST_TIMEOUT bounds how long a request the server failed to
    reject can hang (it then shows up as a 504 instead of a socket timeout).
    """
    server = ServerProcess(_args("--request-timeout", "2"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_error_server() -> Iterator[ServerProcess]:
    server = ServerProcess(_args())
    yield server
    server.stop()


def _refuse(server: ServerProcess, request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes,
                                                              int]:
    """Send a bad request with a valid one pipelined behind it.

    Returns the status line and headers of the first response, everything the
    server sent after it until it closed, and the client's port.
    """
    with server.connect() as sock:
        port = sock.getsockname()[1]
        sock.sendall(request + PIPELINED)
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock, timeout=5)
    return status_line, headers, rest, port


@pytest.mark.parametrize(("request_bytes", "status"), BAD_REQUESTS)
def test_bad_request_is_refused_and_nothing_after_it_is_answered(
        strict_server: ServerProcess, request_bytes: bytes, status: int) -> None:
    status_line, headers, rest, _ = _refuse(strict_server, request_bytes)
    # The pipelined GET /hello is never answered: exactly one response, then EOF.
    check_refused_alone([(status_line, headers, b"")], rest, status)


@pytest.mark.parametrize(("request_bytes", "status"), REFUSED_HEAD_REQUESTS)
def test_a_refused_head_request_gets_its_status_without_a_body(
        strict_server: ServerProcess, request_bytes: bytes, status: int) -> None:
    with strict_server.connect() as sock:
        sock.sendall(request_bytes)
        check_refused_head(recv_until_closed(sock), status)


def test_bad_request_pipelined_after_a_good_one(strict_server: ServerProcess) -> None:
    """The good request is answered first, then the bad one gets its 400, then EOF."""
    with strict_server.connect() as sock:
        sock.sendall(GOOD_THEN_BAD)
        status_line, _, body = read_response(sock)
        assert status_line == b"HTTP/1.1 200 OK"
        assert body == b"slept"
        status_line, headers, _ = read_response(sock)
        rest = recv_until_closed(sock)
    check_refused_alone([(status_line, headers, b"")], rest, 400)


def test_no_traceback_for_client_mistakes(strict_server: ServerProcess) -> None:
    ports = []
    for param in BAD_REQUESTS:
        request_bytes = param.values[0]
        assert isinstance(request_bytes, bytes)
        *_, port = _refuse(strict_server, request_bytes)
        ports.append(port)
    # Barrier: once this request's access line is out, so is everything before it.
    start = len(strict_server.lines)
    _assert_alive(strict_server, "/barrier-no-traceback")
    strict_server.wait_for_log(r"/barrier-no-traceback", start=start)
    output = strict_server.output
    assert "Traceback" not in output
    for port in ports:
        # Each refused request is still visible in the log, on a line of its own.
        assert re.search(rf"127\.0\.0\.1:{port}(?!\d)", output), f"nothing logged for :{port}"
    assert strict_server.proc.poll() is None


def test_valid_request_after_refusals_is_served(strict_server: ServerProcess) -> None:
    _refuse(strict_server, head_of(b"GET /hello HTTP/1.1"))
    _assert_alive(strict_server)


# -- the app's mistakes ----------------------------------------------------------------


def _get(server: ServerProcess, path: str, close: bool = True) -> bytes:
    """Send one GET and return every byte the server sends until it closes."""
    with server.connect() as sock:
        extra = b"Connection: close\r\n" if close else b""
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), extra))
        return recv_until_closed(sock, timeout=5)


def _assert_alive(server: ServerProcess, path: str = "/hello") -> None:
    assert server.proc.poll() is None, server.output
    with server.connect() as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        status_line, _, body = read_response(sock)
    assert status_line == b"HTTP/1.1 200 OK"
    assert body == b"Hello, world!"


def _status(raw: bytes) -> bytes:
    return raw.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(("path", "close", "outcome", "never_written"), APP_MISTAKES)
def test_an_app_mistake_is_a_500_or_an_abort_and_logged(
        app_error_server: ServerProcess, path: str, close: bool, outcome: str,
        never_written: tuple[bytes, ...]) -> None:
    start = len(app_error_server.lines)
    with app_error_server.connect() as sock:
        sock.sendall(app_mistake_request(path, close))
        raw = recv_until_closed(sock, timeout=5)
    check_app_mistake(raw, outcome, never_written)
    app_error_server.wait_for_log(re.escape(path), start=start)
    _assert_alive(app_error_server)


def test_exception_before_start_is_500_and_logged(app_error_server: ServerProcess) -> None:
    start = len(app_error_server.lines)
    raw = _get(app_error_server, "/error/before")
    assert _status(raw) == b"HTTP/1.1 500 Internal Server Error"
    assert b"boom" not in raw  # the exception text is for the log, not the client
    app_error_server.wait_for_log(r"RuntimeError: boom before start", start=start)
    logged = app_error_server.lines[start:]
    assert any(line.startswith("Traceback (most recent call last)") for line in logged), logged
    _assert_alive(app_error_server)


def test_messages_that_are_mappings_but_not_plain_dicts_are_served(
        app_error_server: ServerProcess) -> None:
    """A dict subclass or a mapping proxy is a valid message (compiled too, where Cython
    would refuse anything but an exact dict as a typed argument)."""
    raw = _get(app_error_server, "/mapping-messages")
    assert _status(raw) == b"HTTP/1.1 200 OK"
    assert raw.endswith(b"\r\n\r\nmapped")
    _assert_alive(app_error_server)


def test_body_after_the_final_body_is_never_written(app_error_server: ServerProcess) -> None:
    start = len(app_error_server.lines)
    with app_error_server.connect() as sock:
        sock.sendall(b"GET /body-after-end HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line, _, body = read_response(sock)
        assert status_line == b"HTTP/1.1 200 OK"
        assert body == b"first"
        # The app's extra body would arrive here, ahead of the next answer.
        with contextlib.suppress(OSError):  # the server may close after an app bug
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = recv_until_closed(sock, timeout=5)
    assert b"Smuggled" not in rest
    if rest:
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest
        assert rest.endswith(b"Hello, world!")
        assert rest.count(b"HTTP/1.1") == 1
    app_error_server.wait_for_log(r"/body-after-end", start=start)
    _assert_alive(app_error_server)


def test_many_app_errors_do_not_kill_the_server(app_error_server: ServerProcess) -> None:
    for path in ["/error/before", "/error/after", "/no-response", "/inject/value",
                 "/str-body", "/short-body", "/unknown-type"] * 3:
        _get(app_error_server, path)
    _assert_alive(app_error_server)

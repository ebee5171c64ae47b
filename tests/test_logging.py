"""Logging: the access line, ACCESS_LOG, escaping of client text, and LOGS replacement.

The server's output (stdout and stderr together) is read through the harness;
a "barrier" request whose log line is awaited guarantees that everything the
server logged before it has been read too (one process logs in order).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    ServerFactory,
    ServerProcess,
    file_lines,
    read_response,
    recv_until_closed,
    wait_until,
)

LOGGERS = {"qt_server", "qt_child", "qt_access", "qt_exception"}


@pytest.fixture(scope="module")
def log_server() -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.misbehaving:app", "--host", "127.0.0.1", "--port", "0"])
    yield server
    server.stop()


def _request(server: ServerProcess, raw: bytes) -> tuple[bytes, int]:
    """Send one request on a new connection; return its status line and the client port."""
    with server.connect() as sock:
        port = sock.getsockname()[1]
        sock.sendall(raw)
        status_line, _, _ = read_response(sock)
    return status_line, port


def _barrier(server: ServerProcess, name: str) -> None:
    """Wait until a request to /barrier-<name> has been logged (access log must be on)."""
    start = len(server.lines)
    status_line, _ = _request(server, b"GET /barrier-%s HTTP/1.1\r\nHost: x\r\n\r\n"
                              % name.encode())
    assert status_line == b"HTTP/1.1 200 OK"
    server.wait_for_log(f"/barrier-{name}", start=start)


def _lines_of(server: ServerProcess, port: int) -> list[str]:
    peer = re.compile(rf"127\.0\.0\.1:{port}(?!\d)")
    return [line for line in server.lines if peer.search(line)]


DURATION = r"\d+(\.\d+)?\s*(ms|s|us|µs)\b"


def test_one_access_line_per_request(log_server: ServerProcess) -> None:
    with log_server.connect() as sock:
        port = sock.getsockname()[1]
        sock.sendall(b"GET /hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"
        sock.sendall(b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == b"HTTP/1.1 404 Not Found"
    _barrier(log_server, "access-line")
    lines = _lines_of(log_server, port)
    assert len(lines) == 3, lines
    expected = [
        rf'"GET /hello(\?n=1)? HTTP/1\.1" 200 13 {DURATION}',
        rf'"POST /echo HTTP/1\.1" 200 5 {DURATION}',
        rf'"GET /status/404 HTTP/1\.1" 404 0 {DURATION}',
    ]
    for line, pattern in zip(lines, expected, strict=True):
        assert re.search(pattern, line), (pattern, line)


def test_access_line_shows_http_1_0(log_server: ServerProcess) -> None:
    status_line, port = _request(log_server, b"GET /hello HTTP/1.0\r\n\r\n")
    assert status_line == b"HTTP/1.1 200 OK"
    log_server.wait_for_log(rf"127\.0\.0\.1:{port}(?!\d).*GET /hello HTTP/1\.0.* 200 13 ")


def test_aborted_response_still_gets_an_access_line(log_server: ServerProcess) -> None:
    """An app that breaks its response off is still one request in the access log."""
    with log_server.connect() as sock:
        port = sock.getsockname()[1]
        sock.sendall(b"GET /error/after HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until_closed(sock)
    _barrier(log_server, "aborted")
    lines = [line for line in _lines_of(log_server, port) if "/error/after" in line]
    assert len(lines) == 1, _lines_of(log_server, port)


def test_timed_out_request_gets_an_access_line(start_server: ServerFactory) -> None:
    server = start_server("apps.misbehaving:app", "--request-timeout", "0.3")
    status_line, port = _request(server, b"GET /sleep?s=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 504 ")
    server.wait_for_log(rf"127\.0\.0\.1:{port}(?!\d).*GET /sleep.* 504 ")


def test_no_access_log_removes_the_line(start_server: ServerFactory) -> None:
    server = start_server("apps.misbehaving:app", "--no-access-log")
    status_line, _ = _request(server, b"GET /hello-unlogged HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line == b"HTTP/1.1 200 OK"
    # Barrier without an access log: the exception log of a later request.
    status_line, _ = _request(server, b"GET /error/before HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 500 ")
    server.wait_for_log("boom before start")
    assert not [line for line in server.lines if "/hello-unlogged" in line]


@pytest.mark.parametrize("target", [
    b"/a%0d%0aFAKE",           # CR LF: a forged second log line
    b"/a%0aFAKE%0d",           # LF alone, CR alone
    b"/a%1b%5b31mFAKE%00%7f",  # an ANSI escape sequence, NUL and DEL
])
def test_control_characters_in_path_are_escaped(log_server: ServerProcess,
                                                 target: bytes) -> None:
    status_line, port = _request(log_server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
    assert status_line == b"HTTP/1.1 200 OK"
    _barrier(log_server, "control-characters")
    lines = _lines_of(log_server, port)
    # One line for the request, holding the whole path, escaped.
    assert len(lines) == 1, lines
    assert "FAKE" in lines[0]
    assert not [line for line in log_server.lines if line.startswith("FAKE")]
    for char in "\r\x1b\x00\x7f":
        assert char not in log_server.output


def test_c1_control_characters_in_path_are_escaped(log_server: ServerProcess) -> None:
    """U+0085 (NEL, a line break to Python's str.splitlines) and U+009B (CSI, an escape
    sequence introducer to some terminals) are control characters too."""
    target = b"/a%c2%85FAKE%c2%9b31m"
    status_line, port = _request(log_server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
    assert status_line == b"HTTP/1.1 200 OK"
    _barrier(log_server, "c1-controls")
    lines = _lines_of(log_server, port)
    assert len(lines) == 1, lines
    assert "FAKE" in lines[0]
    assert "\x85" not in lines[0]
    assert "\x9b" not in lines[0]


def _config_file(tmp_path: Path, logs: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "qactuar.json"
    path.write_text(json.dumps({"LOGS": logs}))
    return {"QACTUAR_CONFIG": str(path)}


def _wait_for_file_line(path: Path, pattern: str, timeout: float = 10) -> str:
    regex = re.compile(pattern)

    def matching() -> list[str]:
        return [line for line in file_lines(path) if regex.search(line)]

    wait_until(lambda: bool(matching()), timeout, f"a line matching {pattern!r} in {path}",
               seen=lambda: file_lines(path))
    return matching()[0]


def test_logs_from_config_file_replace_the_whole_setup(start_server: ServerFactory,
                                                        tmp_path: Path) -> None:
    access_file = tmp_path / "access.log"
    env = _config_file(tmp_path, {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "custom": {"format": "CUSTOM-ACCESS {message}", "style": "{"},
            "plain": {"format": "SRV {levelname} {message}", "style": "{"},
        },
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(access_file),
                     "formatter": "custom"},
            "out": {"class": "logging.StreamHandler", "formatter": "plain",
                    "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "qt_access": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "qt_server": {"handlers": ["out"], "level": "INFO", "propagate": False},
        },
    })
    server = start_server("apps.basic:app", env=env)
    status_line, port = _request(server, b"GET /to-the-file HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line == b"HTTP/1.1 200 OK"
    line = _wait_for_file_line(access_file, r"/to-the-file")
    assert line.startswith("CUSTOM-ACCESS "), line
    assert f"127.0.0.1:{port}" in line
    server.stop()
    output = server.lines
    # The default handlers are gone: the access line went only to the file, and the
    # server's own lines use the custom format, each printed once.
    assert not [text for text in output if "/to-the-file" in text]
    assert not [text for text in output if " ACCESS " in text]
    listening = [text for text in output if "Listening on" in text]
    assert len(listening) == 1, output
    assert listening[0].startswith("SRV INFO Listening on"), listening


def test_only_the_four_loggers_are_used(start_server: ServerFactory, tmp_path: Path) -> None:
    # Everything, from any logger, reaches the root handler, tagged with its logger's name.
    env = _config_file(tmp_path, {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tagged": {"format": "LOG|{name}|{levelname}|{message}",
                                  "style": "{"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "tagged",
                             "stream": "ext://sys.stdout", "level": "DEBUG"}},
        "root": {"handlers": ["out"], "level": "DEBUG"},
    })
    server = start_server("apps.basic:app", env=env)
    assert _request(server, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")[0] == b"HTTP/1.1 200 OK"
    status_line, _ = _request(server, b"GET /error/before HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 500 ")
    with server.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\n\r\n")  # no Host: refused by the server
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 400 ")
    assert server.stop() == 0
    tagged = [line.split("|", 3) for line in server.lines if line.startswith("LOG|")]
    names = {name for _, name, _, _ in tagged}
    assert names <= LOGGERS, [line for line in server.lines if line.startswith("LOG|")]
    assert {"qt_server", "qt_access", "qt_exception"} <= names

    def logger_of(text: str) -> set[str]:
        return {name for _, name, _, message in tagged if text in message}

    assert logger_of("Listening on") == {"qt_server"}
    assert logger_of("GET /hello HTTP/1.1") == {"qt_access"}
    assert "qt_exception" in logger_of("/error/before")
    exception_lines = [i for i, line in enumerate(server.lines)
                       if line.startswith("LOG|qt_exception|")]
    traceback_at = server.lines.index("Traceback (most recent call last):")
    assert traceback_at - 1 in exception_lines  # the traceback belongs to that record


@pytest.mark.models("prefork", "postfork")
def test_parents_log_through_qt_server_and_their_children_through_qt_child(
        start_server: ServerFactory, server_model: str, tmp_path: Path) -> None:
    env = _config_file(tmp_path, {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tagged": {"format": "LOG|{name}|{process}|{message}", "style": "{"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "tagged",
                             "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["out"], "level": "INFO"},
    })
    server = start_server("apps.basic:app", env=env)
    with server.connect() as idle:  # a postfork child lives while its connection does
        assert _request(server, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")[0] == b"HTTP/1.1 200 OK"
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle)[0] == b"HTTP/1.1 200 OK"
        server.send_signal()
        assert recv_until_closed(idle, timeout=10) == b""
    assert server.proc.wait(timeout=15) == 0, server.output
    tagged = [line.split("|", 3) for line in server.lines if line.startswith("LOG|")]
    parent = str(server.proc.pid)

    def loggers_of(text: str, in_parent: bool) -> set[str]:
        return {name for _, name, pid, message in tagged
                if text in message and (pid == parent) == in_parent}

    assert loggers_of("Received SIGTERM", in_parent=True) == {"qt_server"}
    assert loggers_of("Received SIGTERM", in_parent=False) == {"qt_child"}
    listening_in_parent = server_model == "postfork"
    assert loggers_of("Listening on", in_parent=listening_in_parent) == {
        "qt_server" if listening_in_parent else "qt_child"}
    assert loggers_of("Listening on", in_parent=not listening_in_parent) == set()
    if server_model == "prefork":
        assert loggers_of("spawned", in_parent=True) == {"qt_server"}

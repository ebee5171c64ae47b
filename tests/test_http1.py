"""HTTP/1.1 behaviour of the async model, checked against a real server over real sockets.

Raw sockets are used where the exact bytes matter; httpx and curl stand in for
ordinary clients.  Nothing here sleeps to let things settle: the app under
test (`apps.http1_app`) writes what it saw to files and the tests poll them
with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import re
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from conftest import ServerProcess, read_response, recv_until_closed, wait_until
from request_tables import (
    EMPTY_BODIES,
    EMPTY_BODY_ANSWER,
    EXCHANGES,
    UPGRADES_NOT_TAKEN,
    Step,
    get,
    upgrade_with_body,
)

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models

HTTP1_APP = "apps.http1_app:app"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def app_server() -> Iterator[ServerProcess]:
    """`apps.http1_app` with a long REQUEST_TIMEOUT (the back-pressure test holds a request)."""
    server = ServerProcess([HTTP1_APP, "--host", "127.0.0.1", "--port", "0",
                            "--request-timeout", "60"])
    yield server
    server.stop()


# -- helpers ---------------------------------------------------------------------


def split_head(data: bytes) -> tuple[bytes, bytes]:
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {data!r}"
    return head, rest


def header_list(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-cased name, value) for every header line of a raw response head."""
    pairs = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        pairs.append((name.strip().lower(), value.strip()))
    return pairs


def header_values(head: bytes, name: bytes) -> list[bytes]:
    return [value for key, value in header_list(head) if key == name]


def assert_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything left on the socket; fails (socket timeout) if the server keeps it open."""
    try:
        return recv_until_closed(sock, timeout=timeout)
    except TimeoutError:
        pytest.fail("the server did not close the connection")


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def wait_for_records(path: Path, condition: Callable[[list[dict[str, Any]]], bool],
                     timeout: float = 10) -> list[dict[str, Any]]:
    wait_until(lambda: condition(read_records(path)), timeout, f"the records in {path}",
               seen=lambda: read_records(path))
    return read_records(path)


def scope_of(server: ServerProcess, request: bytes) -> dict[str, Any]:
    with server.connect() as sock:
        sock.sendall(request)
        status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    return json.loads(body)


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "15", *args],
                          capture_output=True, timeout=timeout, check=False)


# -- framing, keep-alive, pipelining: the shared table -------------------------------


@pytest.mark.parametrize(("steps", "closes"), EXCHANGES)
def test_exchange(basic_server: ServerProcess, steps: tuple[Step, ...], closes: bool) -> None:
    """Each step's request, then its answers, on one connection (request_tables.EXCHANGES)."""
    with basic_server.connect() as sock:
        for step in steps:
            sock.sendall(step.request)
            for answer in step.answers:
                answer.check(read_response(sock, head_only=answer.head_only))
        if closes:
            assert assert_closed(sock) == b""


@pytest.mark.parametrize("request_bytes", EMPTY_BODIES)
def test_empty_body_is_one_final_message(basic_server: ServerProcess,
                                         request_bytes: bytes) -> None:
    with basic_server.connect() as sock:
        sock.sendall(request_bytes)
        EMPTY_BODY_ANSWER.check(read_response(sock))
        # The connection is still in step: the next request is answered.
        sock.sendall(get("/hello"))
        assert read_response(sock)[2] == b"Hello, world!"


@pytest.mark.parametrize("upgrade", UPGRADES_NOT_TAKEN)
def test_an_upgrade_not_taken_keeps_the_request_body(basic_server: ServerProcess,
                                                       upgrade: list[str]) -> None:
    with basic_server.connect() as sock:
        sock.sendall(upgrade_with_body(upgrade))
        status, _headers, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"hello world"


# -- keep-alive ------------------------------------------------------------------


def test_keep_alive_with_httpx_reuses_the_connection(app_server: ServerProcess) -> None:
    with httpx.Client(base_url=app_server.url) as client:
        ports = {tuple(client.get(f"/scope/{i}").json()["client"]) for i in range(4)}
    assert len(ports) == 1, f"httpx needed several connections: {ports}"


@needs_curl
def test_keep_alive_with_curl_reuses_the_connection(basic_server: ServerProcess) -> None:
    url = f"{basic_server.url}/hello"
    result = curl("--output", "/dev/null", "--output", "/dev/null",
                  "--write-out", "%{num_connects}\n", url, url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["1", "0"]


# -- Connection: close -----------------------------------------------------------


def test_app_connection_close_header_closes_the_connection(app_server: ServerProcess) -> None:
    with app_server.connect() as sock:
        sock.sendall(get("/app-close") + get("/scope"))
        data = assert_closed(sock)
    head, body = split_head(data)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert header_values(head, b"connection") == [b"close"]
    assert body == b"closing"  # and nothing for the pipelined second request


# -- request bodies --------------------------------------------------------------


def test_chunked_request_body_is_streamed_in_several_messages(app_server: ServerProcess,
                                                              tmp_path: Path) -> None:
    log = tmp_path / "receive.log"
    pieces = [b"first piece|", b"second|", b"third and last"]
    with app_server.connect() as sock:
        sock.sendall(get(f"/log-body?log={quote(str(log))}", "Transfer-Encoding: chunked",
                         method="POST"))
        for n, piece in enumerate(pieces, start=1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            # The app has this piece before the client sends the next one.
            records = wait_for_records(log, lambda r, n=n: len(r) >= n)
            assert records[-1] == {"type": "http.request", "len": len(piece), "more_body": True}
        sock.sendall(b"0\r\n\r\n")
        status, headers, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"".join(pieces)
    assert int(headers[b"x-receive-calls"]) == len(pieces) + 1
    records = read_records(log)
    assert records[-1] == {"type": "http.request", "len": 0, "more_body": False}


def test_httpx_streamed_request_body(basic_server: ServerProcess) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(20):
            yield f"piece-{i};".encode() * 100

    with httpx.Client(base_url=basic_server.url) as client:
        response = client.post("/echo", content=pieces())
    assert response.status_code == 200
    assert response.content == b"".join(pieces())


def test_content_length_body(basic_server: ServerProcess) -> None:
    payload = bytes(range(256)) * 800  # 200 KiB, every byte value
    with httpx.Client(base_url=basic_server.url) as client:
        response = client.post("/echo", content=payload)
    assert response.status_code == 200
    assert response.content == payload
    assert int(response.headers["x-receive-calls"]) >= 1


def test_content_length_body_raw_in_pieces(app_server: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "receive.log"
    with app_server.connect() as sock:
        sock.sendall(get(f"/log-body?log={quote(str(log))}", "Content-Length: 11",
                         method="POST", body=b"hello"))
        wait_for_records(log, lambda r: len(r) >= 1)
        sock.sendall(b" world")
        _status, _headers, body = read_response(sock)
    assert body == b"hello world"
    records = read_records(log)
    assert records[0] == {"type": "http.request", "len": 5, "more_body": True}
    assert records[-1]["more_body"] is False
    assert sum(r["len"] for r in records) == 11


# -- back-pressure on request bodies ---------------------------------------------


def test_request_body_back_pressure(app_server: ServerProcess, tmp_path: Path) -> None:
    total = 64 * 1024 * 1024
    block = bytes(range(256)) * 4096  # 1 MiB
    signal_file = tmp_path / "read-now"
    expected = hashlib.sha256()
    for _ in range(total // len(block)):
        expected.update(block)

    with app_server.connect() as sock:
        sock.sendall(get(f"/wait-read?signal={quote(str(signal_file))}",
                         f"Content-Length: {total}", method="POST"))
        # The app does not read: the server must stop reading, so sends stall.
        sock.settimeout(1.0)
        sent = 0
        view = memoryview(block)
        stalled = False
        while sent < total:
            offset = sent % len(block)
            try:
                sent += sock.send(view[offset:offset + min(len(block) - offset, total - sent)])
            except TimeoutError:
                stalled = True
                break
        assert stalled and sent < total, (
            f"the server accepted all {sent} bytes while the app was not reading")

        # Now the app reads: the rest of the body goes through, all of it.
        signal_file.touch()
        sock.settimeout(30)
        while sent < total:
            offset = sent % len(block)
            chunk = view[offset:offset + min(len(block) - offset, total - sent)]
            sock.sendall(chunk)
            sent += len(chunk)
        status, headers, body = read_response(sock, timeout=30)
    assert status == b"HTTP/1.1 200 OK"
    assert body.decode() == f"{total} {expected.hexdigest()}"
    assert int(headers[b"x-receive-calls"]) > 1


# -- responses ---------------------------------------------------------------------


def test_app_content_length_is_used(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/sized?n=100", "Connection: close"))
        head, body = split_head(assert_closed(sock))
    assert header_values(head, b"content-length") == [b"100"]
    assert header_values(head, b"transfer-encoding") == []
    assert body == b"x" * 100


def test_streamed_response_is_chunked(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/stream?n=3", "Connection: close"))
        head, body = split_head(assert_closed(sock))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert header_values(head, b"transfer-encoding") == [b"chunked"]
    assert header_values(head, b"content-length") == []
    assert body == (b"8\r\nchunk-0\n\r\n"
                    b"8\r\nchunk-1\n\r\n"
                    b"8\r\nchunk-2\n\r\n"
                    b"0\r\n\r\n")


def test_streamed_parts_are_written_once_the_app_waits(app_server: ServerProcess) -> None:
    # Parts sent back to back are gathered into one write; the server must
    # still write them as soon as the app stops to wait, not at its end.
    with app_server.connect() as sock:
        sock.sendall(get("/part-then-wait"))
        received = b""
        while not received.endswith(b"5\r\nthree\r\n"):
            chunk = sock.recv(65536)
            assert chunk, f"closed early after {received!r}"
            received += chunk
    assert b"4\r\none,\r\n4\r\ntwo,\r\n" in received


def test_app_stopping_after_a_half_close_is_not_blamed(app_server: ServerProcess) -> None:
    # A client that closes after its request (as curl does after a HEAD answer)
    # half-closes first; the app is told http.disconnect and stops.  That is
    # not an app error: no ERROR line, and the unfinished response is cut.
    with app_server.connect() as sock:
        sock.sendall(get("/stop-on-disconnect"))
        sock.shutdown(socket.SHUT_WR)
        received = recv_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not received.endswith(b"0\r\n\r\n")  # cut, not completed
    with app_server.connect() as sock:  # the server is fine
        sock.sendall(get("/hello", "Connection: close"))
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 200 OK")
    assert "returned without" not in app_server.output
    assert "ERROR" not in app_server.output


def test_an_upgrade_not_taken_with_a_chunked_body_is_refused(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/echo", "Connection: Upgrade", "Upgrade: foo",
                         "Transfer-Encoding: chunked", method="POST",
                         body=b"5\r\nhello\r\n0\r\n\r\n"))
        status, _headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 501 "), status
    assert b"Upgrade" in body


def test_date_and_server_headers(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/hello", "Connection: close"))
        head, _ = split_head(assert_closed(sock))
    dates = header_values(head, b"date")
    assert len(dates) == 1
    assert re.fullmatch(rb"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT",
                        dates[0]), dates
    when = parsedate_to_datetime(dates[0].decode())
    assert abs(when.timestamp() - time.time()) < 120
    servers = header_values(head, b"server")
    assert len(servers) == 1
    assert servers[0].startswith(b"qactuar/")


def test_http_date_matches_the_standard_librarys_formatting() -> None:
    """The server's own Date formatting (no email.utils import at start) gives RFC 9110's
    IMF-fixdate, as email.utils.formatdate does, across leap days and centuries."""
    from email.utils import formatdate

    from qactuar.server_state import http_date

    moments = [0.0, 951_782_400.0, 1_709_164_800.5, 4_102_444_799.0, 2_147_483_648.0]
    moments += [n * 7_654_321.123 for n in range(600)]
    for moment in moments:
        assert http_date(moment) == formatdate(moment, usegmt=True), moment


def test_app_server_header_replaces_ours(app_server: ServerProcess) -> None:
    with app_server.connect() as sock:
        sock.sendall(get("/custom-server", "Connection: close"))
        head, body = split_head(assert_closed(sock))
    assert body == b"custom"
    assert header_values(head, b"server") == [b"my-app/1.0"]


# -- Expect: 100-continue ----------------------------------------------------------


def test_expect_continue_waits_for_the_app(app_server: ServerProcess, tmp_path: Path) -> None:
    signal_file = tmp_path / "read-now"
    started = tmp_path / "started"
    with app_server.connect() as sock:
        sock.sendall(get(f"/wait-read?signal={quote(str(signal_file))}"
                         f"&started={quote(str(started))}",
                         "Expect: 100-continue", "Content-Length: 4", method="POST"))
        wait_for_records(started, bool)
        # The app runs but has not asked for the body: no 100 Continue yet.
        readable, _, _ = select.select([sock], [], [], 0.2)
        assert not readable, sock.recv(1000)
        signal_file.touch()
        status, _, _ = read_response(sock)
        assert status == b"HTTP/1.1 100 Continue"
        sock.sendall(b"data")
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert body.decode() == f"4 {hashlib.sha256(b'data').hexdigest()}"


@needs_curl
def test_expect_continue_with_curl(basic_server: ServerProcess) -> None:
    result = curl("--verbose", "--header", "Expect: 100-continue", "--data-binary", "payload",
                  f"{basic_server.url}/echo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"payload"
    assert b"HTTP/1.1 100 Continue" in result.stderr


# -- http.disconnect ---------------------------------------------------------------


def test_disconnect_delivered_mid_body(app_server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "messages"
    sock = app_server.connect()
    sock.sendall(get(f"/record?out={quote(str(out))}", "Content-Length: 1000", method="POST",
                     body=b"0123456789"))
    wait_for_records(out, lambda r: len(r) >= 1)
    sock.close()
    records = wait_for_records(out, lambda r: r[-1]["type"] == "http.disconnect")
    assert records[0] == {"type": "http.request", "len": 10, "more_body": True}
    assert [r["type"] for r in records[:-1]] == ["http.request"] * (len(records) - 1)


def test_disconnect_delivered_while_waiting_after_body(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # Its own server: if the disconnect is lost, the stuck connection stays with it.
    server = start_server(HTTP1_APP)
    out = tmp_path / "messages"
    sock = server.connect()
    sock.sendall(get(f"/record?out={quote(str(out))}"))
    wait_for_records(out, lambda r: len(r) >= 1)
    sock.close()
    records = wait_for_records(out, lambda r: len(r) >= 2, timeout=5)
    assert records == [{"type": "http.request", "len": 0, "more_body": False},
                       {"type": "http.disconnect", "len": 0, "more_body": False}]


def test_receive_after_response_returns_disconnect(app_server: ServerProcess,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "messages"
    with app_server.connect() as sock:
        sock.sendall(get(f"/after-response?out={quote(str(out))}"))
        _status, _, body = read_response(sock)
        assert body == b"done"
        # The client is still connected; receive() must not wait for it to leave.
        records = wait_for_records(out, lambda r: len(r) >= 1)
        assert records == [{"type": "http.disconnect", "len": 0, "more_body": False}]
        sock.sendall(get("/scope"))
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"


# -- the scope ---------------------------------------------------------------------


def test_scope_path_query_and_headers(app_server: ServerProcess) -> None:
    request = (b"POST /a%20b/caf%C3%A9?q=%20x&q=2&empty= HTTP/1.1\r\n"
               b"Host: example.test\r\n"
               b"X-Dup: one\r\n"
               b"X-Other: Mixed Case Value\r\n"
               b"x-DUP: two\r\n"
               b"Content-Length: 0\r\n\r\n")
    scope = scope_of(app_server, request)
    assert scope["type"] == "http"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/café"
    assert scope["raw_path"].encode("latin-1") == b"/a%20b/caf%C3%A9"
    assert scope["query_string"].encode("latin-1") == b"q=%20x&q=2&empty="
    assert scope["root_path"] == ""
    assert scope["headers"] == [["host", "example.test"], ["x-dup", "one"],
                                ["x-other", "Mixed Case Value"], ["x-dup", "two"],
                                ["content-length", "0"]]
    assert scope["types"] == {"raw_path": "bytes", "query_string": "bytes", "path": "str",
                              "headers_are_byte_pairs": True, "client": "tuple",
                              "server": "tuple"}


def test_scope_client_server_and_asgi(app_server: ServerProcess) -> None:
    with app_server.connect() as sock:
        sock.sendall(get("/scope"))
        _, _, body = read_response(sock)
        local, peer = sock.getsockname(), sock.getpeername()
    scope = json.loads(body)
    assert tuple(scope["client"]) == (local[0], local[1])
    assert tuple(scope["server"]) == (peer[0], peer[1]) == ("127.0.0.1", app_server.port)
    assert scope["asgi"]["version"] == "3.0"
    assert re.fullmatch(r"2\.\d+", scope["asgi"]["spec_version"])
    assert set(scope["asgi"]) == {"version", "spec_version"}
    assert scope["has_state"] is True
    assert scope["state"] == {"app": "http1"}  # a copy of what lifespan startup stored
    assert scope["query_string"] == ""
    assert scope["raw_path"] == "/scope"


def test_scope_http10_and_methods(app_server: ServerProcess) -> None:
    with app_server.connect() as sock:
        sock.sendall(get("/v10?x=1", "Content-Length: 0", version="1.0", method="PUT"))
        _head, body = split_head(assert_closed(sock))
    scope = json.loads(body)
    assert scope["http_version"] == "1.0"
    assert scope["method"] == "PUT"
    assert scope["path"] == "/v10"
    assert scope["query_string"] == "x=1"


def test_scope_with_root_path_setting(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(HTTP1_APP, "--root-path", "/api")
    scope = scope_of(server, get("/items/caf%C3%A9?x=1"))
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/café"
    assert scope["query_string"] == "x=1"


# -- app exceptions ----------------------------------------------------------------


def test_exception_after_start_aborts_raw(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/error/after"))  # keep-alive: only an abort ends the connection
        data = assert_closed(sock)
    head, body = split_head(data)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert header_values(head, b"transfer-encoding") == [b"chunked"]
    assert body == b"7\r\npartial\r\n"  # no last chunk: the client can tell
    basic_server.wait_for_log("boom after start")


@needs_curl
def test_exception_after_start_curl_fails(basic_server: ServerProcess) -> None:
    result = curl(f"{basic_server.url}/error/after")
    assert result.returncode != 0, result


def test_exception_before_start_is_500(basic_server: ServerProcess) -> None:
    with basic_server.connect() as sock:
        sock.sendall(get("/error/before"))
        status, headers, body = read_response(sock)
        assert status == b"HTTP/1.1 500 Internal Server Error"
        assert int(headers[b"content-length"]) == len(body)
    basic_server.wait_for_log("boom before start")
    with httpx.Client(base_url=basic_server.url) as client:
        assert client.get("/error/before").status_code == 500
        assert client.get("/hello").text == "Hello, world!"  # the server lives on

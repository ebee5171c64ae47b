"""The defects a mutation fuzzer and h2spec found (issue 14), each pinned by a test.

In process (tests/inprocess.py) where the protocol alone shows the defect, end
to end where it needs the whole server (one client freezing every other):

- the HEAD-ness of one request leaking into a refusal's framing;
- the HTTP/2 preface taken for h2c anywhere but at the start of a connection;
- HEAD to an app streaming without end holding the event loop;
- the unsent body of an aborted HTTP/2 stream kept until the cyclic GC ran;
- `Host: x y` answered 200;
- HTTP2 = only: an invalid preface closed without GOAWAY PROTOCOL_ERROR.
"""

from __future__ import annotations

import gc
import socket
import tracemalloc
from collections.abc import Iterator

import h2.errors
import h2.settings
import pytest
from hyperframe.frame import GoAwayFrame, SettingsFrame

from conftest import ServerFactory, parse_responses, read_response
from h2_client import parse_frames
from inprocess import InProcessServer, serving

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GET = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n"
HEAD = b"HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    with serving("apps.h2_app:app") as server:
        yield server


def refusal_with_its_body(data: bytes, head_only: list[bool]) -> tuple[bytes, bytes]:
    """The status line and body of the last response in `data` (the connection closed),
    checking that its body is as long as its content-length says."""
    responses, rest = parse_responses(data, head_only)
    status, headers, body = responses[-1]
    assert rest == b"", f"bytes after the refusal: {rest!r}"
    assert int(headers[b"content-length"]) == len(body) > 0
    return status, body


# -- a refusal's framing never takes HEAD-ness from elsewhere ---------------------------


@pytest.mark.parametrize("request_line", [b"HEADX / HTTP/1.1", b"HEAD/ HTTP/1.1",
                                          b"HEAD\t/ HTTP/1.1", b"HEA / HTTP/1.1"])
def test_a_refusal_after_the_letters_head_has_its_body(server: InProcessServer,
                                                        request_line: bytes) -> None:
    connection = server.connect()
    connection.feed(request_line + b"\r\nHost: test\r\n\r\n")
    status, _ = refusal_with_its_body(connection.read_until_closed(), [False])
    assert status.startswith(b"HTTP/1.1 400")
    assert server.tracebacks() == []


@pytest.mark.parametrize("bad", [b"GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n",
                                 b"BAD\x01 / HTTP/1.1\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n"
                                 b"Content-Length: 2\r\n\r\n"])
def test_a_refusal_after_a_head_request_has_its_body(server: InProcessServer,
                                                      bad: bytes) -> None:
    connection = server.connect()
    connection.feed(HEAD)
    connection.feed(bad)
    status, _ = refusal_with_its_body(connection.read_until_closed(), [True, False])
    assert status.startswith(b"HTTP/1.1 400")


def test_a_refused_head_request_itself_has_no_body(server: InProcessServer) -> None:
    connection = server.connect()
    connection.feed(b"HEAD /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    data = connection.read_until_closed()
    [(status, headers, _)], rest = parse_responses(data, [True])
    assert status.startswith(b"HTTP/1.1 414") and int(headers[b"content-length"]) > 0
    assert rest == b""  # the length is what a GET would get; no body follows


# -- the HTTP/2 preface counts only as a connection's first bytes ----------------------


@pytest.mark.parametrize("before", [b"XYZ", b"GET http://x ", b"G"])
def test_a_preface_after_other_bytes_is_not_http2(server: InProcessServer,
                                                  before: bytes) -> None:
    connection = server.connect()
    connection.feed(before + PREFACE + SettingsFrame(0).serialize())
    data = connection.read_until_closed()
    assert data.startswith(b"HTTP/1.1 400 "), data[:80]
    assert type(connection.protocol).__name__ == "HTTP1Protocol"


def test_a_preface_after_a_completed_request_is_not_http2(server: InProcessServer) -> None:
    connection = server.connect()
    [(status, _, body)], _ = parse_responses(connection.send(GET), [False], closed=False)
    assert status.startswith(b"HTTP/1.1 200") and body == b"Hello, world!"
    connection.feed(PREFACE + SettingsFrame(0).serialize())
    data = connection.read_until_closed()
    assert data.startswith(b"HTTP/1.1 "), data[:80]  # answered in HTTP/1.1, not frames
    assert data.split(b" ")[1] in (b"400", b"505")
    assert type(connection.protocol).__name__ == "HTTP1Protocol"


@pytest.mark.parametrize("pieces", [1, 5, 23, 24])
def test_a_preface_first_is_http2_however_it_is_split(server: InProcessServer,
                                                      pieces: int) -> None:
    connection = server.connect()
    connection.feed(PREFACE, pieces)  # the preface alone, then (later) the client's SETTINGS
    connection.feed(SettingsFrame(0).serialize())
    frames = parse_frames(connection.read())
    assert frames and isinstance(frames[0], SettingsFrame)  # the server's preface
    assert not connection.closed
    assert type(connection.protocol).__name__ == "H2Protocol"


# -- Host must be a valid host --------------------------------------------------------


@pytest.mark.parametrize("host", [b"x y", b"x\ty", b"a@b", b"a/b", b"[::1", b"x:8o"])
def test_an_invalid_host_is_400(server: InProcessServer, host: bytes) -> None:
    connection = server.connect()
    connection.feed(b"GET /hello HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    status, body = refusal_with_its_body(connection.read_until_closed(), [False])
    assert status.startswith(b"HTTP/1.1 400") and b"Host" in body


@pytest.mark.parametrize("host", [b"example.com", b"example.com:8080", b"127.0.0.1:1",
                                  b"[::1]:8000", b"xn--bcher-kva.example", b""])
def test_a_valid_host_is_served(server: InProcessServer, host: bytes) -> None:
    connection = server.connect()
    data = connection.send(b"GET /hello HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    [(status, _, body)], _ = parse_responses(data, [False], closed=False)
    assert status.startswith(b"HTTP/1.1 200") and body == b"Hello, world!"


def test_an_invalid_authority_is_400_over_http2(server: InProcessServer) -> None:
    h2c = server.h2_connect()
    h2c.host = b"x y"  # the :authority of its requests
    h2c.conn.config.validate_outbound_headers = False
    result = h2c.get("/hello")
    assert result.status == 400 and b"Host" in result.body


# -- HTTP/2: an aborted stream's body is freed at once -----------------------------------


def test_an_aborted_streams_unsent_body_is_freed_without_the_gc(server: InProcessServer) -> None:
    size = 8 * 1024 * 1024
    h2c = server.h2_connect(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0},
                            auto_window=False)
    h2c.wait_for_settings_ack()
    gc.collect()
    gc.disable()  # what is freed below is freed by reference counting alone
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stream_id = h2c.request(f"/sized?n={size}")
        h2c.wait_for(lambda: bool(h2c.streams[stream_id].headers), what="the head")
        h2c.connection.settle()
        held = tracemalloc.get_traced_memory()[0] - before
        assert held > size  # the body waits for a window the client never opens
        h2c.connection.disconnect()
        left = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert left < size // 8, f"{left} bytes still held after the client went away"


# -- HTTP2 = only ---------------------------------------------------------------------


@pytest.mark.parametrize("opening", [GET, b"PRI * HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00"])
def test_http2_only_answers_an_invalid_preface_with_goaway(opening: bytes) -> None:
    with serving("apps.h2_app:app", HTTP2="only") as only:
        connection = only.connect()
        connection.feed(opening)
        frames = parse_frames(connection.read_until_closed())
        goaways = [frame for frame in frames if isinstance(frame, GoAwayFrame)]
        assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert only.tracebacks() == []


def test_http2_only_serves_http2() -> None:
    with serving("apps.h2_app:app", HTTP2="only") as only:
        assert only.h2_connect().get("/hello").body == b"Hello, world!"


# -- HEAD to an endless body does not hold the loop (end to end) --------------------------


def test_head_to_an_endless_body_leaves_other_clients_served(start_server: ServerFactory) -> None:
    server = start_server("apps.endless:app")
    head = server.connect()
    head.sendall(b"HEAD /endless HTTP/1.1\r\nHost: test\r\n\r\n")
    status, _, _ = read_response(head, head_only=True)
    assert status.startswith(b"HTTP/1.1 200")
    # The app is still sending parts nobody will see: another client is served anyway.
    other = server.connect()
    other.sendall(GET)
    status, _, body = read_response(other, timeout=10)
    assert status.startswith(b"HTTP/1.1 200") and body == b"Hello, world!"
    head.close()
    other.close()


def test_head_to_an_endless_body_leaves_other_streams_served_over_http2() -> None:
    with serving("apps.endless:app") as endless:
        h2c = endless.h2_connect()
        head = h2c.request("/endless", method="HEAD")
        h2c.wait_for(lambda: bool(h2c.streams[head].headers), what="the HEAD response head")
        assert h2c.get("/hello").body == b"Hello, world!"  # the loop was not held
        assert h2c.streams[head].body == b""


def test_http2_only_is_a_setting_the_command_line_takes(start_server: ServerFactory) -> None:
    server = start_server("apps.h2_app:app", "--http2", "only")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(GET)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    goaways = [frame for frame in parse_frames(data) if isinstance(frame, GoAwayFrame)]
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR

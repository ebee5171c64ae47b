"""Hand-overs in process: a connection that starts as HTTP/1.1 and goes on in another protocol.

h2c by upgrade and by prior knowledge, h2 chosen by ALPN on a TLS connection
(a real TLS session, its handshake run in memory), and the WebSocket upgrade,
alone and behind a pipelined request.  Each is checked by what the client
sees, so the tests hold whichever module makes the hand-over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conftest import parse_responses
from h2_client import StreamResult
from inprocess import InProcessServer, serving, tls_session
from request_tables import HELLO, get
from ws_client import CLOSE, TEXT, close_payload, frame, handshake, parse_ws_frames


@pytest.fixture
def h2_server() -> Iterator[InProcessServer]:
    with serving("apps.h2_app:app") as server:
        yield server


def upgrade_request(settings: bytes) -> bytes:
    return (b"GET /scope?via=upgrade HTTP/1.1\r\nHost: example.org\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: " + settings + b"\r\n\r\n")


def test_h2c_upgrade_answers_the_request_as_stream_1(h2_server: InProcessServer) -> None:
    h2c = h2_server.h2_connect(send_preface=False)
    settings = h2c.conn.initiate_upgrade_connection()
    h2c.connection.feed(upgrade_request(settings))
    head, _, rest = h2c.connection.read().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"\r\nupgrade: h2c" in head.lower()
    h2c.receive(rest)  # the server's HTTP/2 from here on
    h2c.flush()  # the client preface
    h2c.streams.setdefault(1, StreamResult())
    scope = json.loads(h2c.response(1).body)
    assert scope["http_version"] == "2" and scope["query_string"] == "via=upgrade"
    assert ["host", "example.org"] in scope["headers"]
    assert not any(name in ("upgrade", "http2-settings", "connection")
                   for name, _ in scope["headers"])
    assert h2c.get("/hello").body == b"Hello, world!"  # the connection goes on in HTTP/2


def test_h2c_upgrade_is_ignored_when_http2_is_off() -> None:
    with serving("apps.h2_app:app", HTTP2="off") as server:
        connection = server.connect()
        connection.feed(upgrade_request(b"AAMAAABkAAQCAAAAAAIAAAAA"))
        [(status_line, _, body)], _ = parse_responses(connection.read(), [False], False)
    assert status_line == b"HTTP/1.1 200 OK"
    assert json.loads(body)["http_version"] == "1.1"


@pytest.mark.parametrize("http2", ["auto", "off"])
def test_the_preface_is_http2_only_when_http2_is_allowed(http2: str) -> None:
    with serving("apps.h2_app:app", HTTP2=http2) as server:
        connection = server.connect()
        answer = connection.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        if http2 == "off":  # an HTTP/1.1 request with a version it does not speak
            assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 505 ")), answer
            assert connection.closed
        else:  # the server's SETTINGS frame
            assert answer[3:4] == b"\x04" and not connection.closed, answer


@pytest.mark.parametrize(("alpn", "version"), [(["h2", "http/1.1"], "2"),
                                                (["http/1.1"], "1.1")], ids=["h2", "http-1.1"])
def test_alpn_chooses_the_protocol_of_a_tls_connection(alpn: list[str], version: str) -> None:
    with serving("apps.h2_app:app", scheme="https") as server:
        tls = tls_session(alpn)
        if version == "2":
            result = server.h2_connect(tls=tls).get("/scope")
            assert result.status == 200
            scope = json.loads(result.body)
        else:
            connection = server.connect(tls=tls)
            [(_, _, body)], _ = parse_responses(connection.send(get("/scope")), [False], False)
            scope = json.loads(body)
    assert scope["http_version"] == version
    assert scope["scheme"] == "https"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304


@pytest.fixture
def ws_server() -> Iterator[InProcessServer]:
    with serving("apps.ws_app:app") as server:
        yield server


def test_websocket_upgrade_then_messages_then_the_close(ws_server: InProcessServer) -> None:
    connection = ws_server.connect()
    head, _, rest = connection.send(handshake("/echo")).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert rest == b""
    [echoed] = parse_ws_frames(connection.send(frame(TEXT, b"hello")))
    assert (echoed.opcode, echoed.payload) == (TEXT, b"hello")
    [closing] = parse_ws_frames(connection.send(frame(CLOSE, close_payload(1000))))
    assert closing.opcode == CLOSE and closing.close_code == 1000
    connection.wait_for(lambda: connection.closed, what="the close")


def test_a_websocket_upgrade_with_its_first_frame_in_the_same_read(
        ws_server: InProcessServer) -> None:
    connection = ws_server.connect()
    head, _, rest = connection.send(handshake("/echo") + frame(TEXT, b"early")).partition(
        b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    [echoed] = parse_ws_frames(rest)
    assert echoed.payload == b"early"


def test_a_websocket_upgrade_behind_a_pipelined_request_waits_its_turn(
        ws_server: InProcessServer) -> None:
    connection = ws_server.connect()
    data = connection.send(get("/plain") + handshake("/echo") + frame(TEXT, b"after"))
    [(status_line, _, body), (upgrade_line, _, _)], rest = parse_responses(
        data, [False, False], closed=False)
    assert (status_line, body) == (b"HTTP/1.1 200 OK", b"plain http /plain")
    assert upgrade_line.startswith(b"HTTP/1.1 101 ")
    [echoed] = parse_ws_frames(rest)
    assert echoed.payload == b"after"


def test_a_refused_websocket_handshake_is_an_http_answer(ws_server: InProcessServer) -> None:
    connection = ws_server.connect()
    answer = connection.send(handshake("/echo", version="8") + get("/plain"))
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"\r\nsec-websocket-version: 13\r\n" in answer
    assert connection.closed
    assert HELLO.body not in answer

"""The ASGI side of WebSockets and the opening handshake, through the real server.

The scope, every websocket.* message (connect, accept with subprotocol and
headers, receive, send, close, disconnect), the websocket.http.response
extension, refused handshakes (403/500), handshake validation (400), WS=off,
routing under APPS, and app errors.  Raw sockets (tests/ws_client.py) where
bytes matter, the `websockets` client elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.lifespan_apps import EVENTS_VAR
from conftest import (
    ServerFactory,
    ServerProcess,
    file_lines,
    read_response,
    recv_until_closed,
    wait_until,
)
from ws_client import BINARY, CLOSE, TEXT, RawWebSocket, close_payload, frame, handshake


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws") / "events.txt"


@pytest.fixture(scope="module")
def server(events: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0"],
                           env={EVENTS_VAR: str(events)})
    yield server
    assert server.stop() == 0, server.output


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


# -- scope and messages ------------------------------------------------------------


def test_websocket_scope(server: ServerProcess) -> None:
    async def scope() -> dict[str, Any]:
        async with websockets.connect(ws_url(server, "/scope?a=1&b=%20"),
                                      subprotocols=["chat", "superchat"],
                                      additional_headers={"X-Custom": "yes"}) as ws:
            return json.loads(await ws.recv())

    shown = run(scope())
    assert shown["type"] == "websocket"
    assert shown["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert shown["scheme"] == "ws"
    assert shown["http_version"] == "1.1"
    assert shown["path"] == "/scope"
    assert shown["raw_path"] == "/scope"
    assert shown["query_string"] == "a=1&b=%20"
    assert shown["root_path"] == ""
    assert shown["subprotocols"] == ["chat", "superchat"]
    assert ["x-custom", "yes"] in shown["headers"]
    assert shown["client"][0] == "127.0.0.1"
    assert shown["server"] == ["127.0.0.1", server.port]
    assert shown["extensions"] == {"websocket.http.response": {}}
    assert shown["state"] == []
    assert "method" not in shown


def test_accept_with_subprotocol_and_extra_headers(server: ServerProcess) -> None:
    async def talk() -> tuple[str | None, str | None, str]:
        async with websockets.connect(ws_url(server, "/subprotocol"),
                                      subprotocols=["v1", "v2"]) as ws:
            return ws.subprotocol, ws.response.headers.get("x-extra"), await ws.recv()

    assert run(talk()) == ("v2", "yes", '["v1", "v2"]')


def test_text_and_bytes_messages_round_trip(server: ServerProcess) -> None:
    async def talk() -> list[Any]:
        async with websockets.connect(ws_url(server, "/echo")) as ws:
            answers = []
            for message in ["héllo ✓", b"\x00\xff binary", "", b"", "x" * 70_000]:
                await ws.send(message)
                answers.append(await ws.recv())
            return answers

    assert run(talk()) == ["héllo ✓", b"\x00\xff binary", "", b"", "x" * 70_000]


def test_app_close_with_code_and_reason(server: ServerProcess, events: Path) -> None:
    ws = RawWebSocket.connect(server, "/close?code=4001&reason=bye%20now")
    assert ws.accepted
    received = ws.recv_frame()
    assert (received.opcode, received.close_code, received.close_reason) == (
        CLOSE, 4001, b"bye now")
    ws.send_frame(CLOSE, received.payload)  # the client completes the close handshake
    ws.expect_tcp_closed()
    wait_until(lambda: "/close websocket.disconnect 4001" in file_lines(events),
               what="websocket.disconnect after the app's close")


def test_disconnect_code_and_send_after_disconnect(server: ServerProcess, events: Path) -> None:
    ws = RawWebSocket.connect(server, "/wait?c=4321")
    ws.send_frame(TEXT, b"first")
    ws.send_frame(CLOSE, close_payload(4321, b"done"))
    ws.expect_close(4321)
    wait_until(lambda: "/wait disconnect 4321 done" in file_lines(events),
               what="websocket.disconnect with the client's code and reason")
    lines = file_lines(events)
    assert "/wait got 'first'" in lines
    # ASGI 2.4: send() after the disconnect raises an OSError subclass.
    wait_until(lambda: "/wait send-error ClientDisconnected" in file_lines(events),
               what="the OSError from send() after disconnect")


def test_connection_dropped_without_close_frame_is_1006(server: ServerProcess,
                                                        events: Path) -> None:
    before = file_lines(events).count("/wait disconnect 1006 ")
    ws = RawWebSocket.connect(server, "/wait")
    ws.send_frame(BINARY, b"x")
    wait_until(lambda: "/wait got b'x'" in file_lines(events), what="the message")
    ws.close()
    wait_until(lambda: file_lines(events).count("/wait disconnect 1006 ") == before + 1,
               what="websocket.disconnect 1006")


def test_send_after_the_apps_own_close_is_an_error(server: ServerProcess,
                                                   events: Path) -> None:
    ws = RawWebSocket.connect(server, "/send-after-close")
    received = ws.recv_frame()
    assert (received.opcode, received.close_code) == (CLOSE, 1000)
    wait_until(lambda: "/send-after-close send-error RuntimeError" in file_lines(events),
               what="RuntimeError for websocket.send after websocket.close")


def test_bytes_sent_right_after_the_handshake_wait_for_accept(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/echo", after_head=frame(TEXT, b"eager"))
    assert ws.accepted
    received = ws.recv_data_frame()
    assert (received.opcode, received.payload) == (TEXT, b"eager")


def test_pipelined_request_before_the_upgrade_is_answered_first(server: ServerProcess) -> None:
    sock = server.connect()
    sock.sendall(b"GET /first HTTP/1.1\r\nHost: test\r\n\r\n" + handshake("/echo"))
    status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200") and body == b"plain http /first"
    status, _, _ = read_response(sock)
    assert status.startswith(b"HTTP/1.1 101"), status
    ws = RawWebSocket(sock)
    ws.send_frame(TEXT, b"after pipelining")
    assert ws.recv_data_frame().payload == b"after pipelining"


def test_access_log_line_for_the_handshake(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app")
    ws = RawWebSocket.connect(server, "/echo?x=1")
    assert ws.accepted
    server.wait_for_log(r'ACCESS 127\.0\.0\.1:\d+ "GET /echo\?x=1 HTTP/1\.1" 101 ')
    RawWebSocket.connect(server, "/refuse")
    server.wait_for_log(r'"GET /refuse HTTP/1\.1" 403 ')


# -- refusing the handshake ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/refuse", "/return"])
def test_refused_or_never_accepted_handshake_gets_403(server: ServerProcess, path: str) -> None:
    ws = RawWebSocket.connect(server, path)
    assert ws.status.startswith(b"HTTP/1.1 403 "), ws.status
    assert ws.headers[b"connection"] == b"close"
    assert b"refused" in ws.body
    ws.expect_tcp_closed()


def test_http_response_extension(server: ServerProcess) -> None:
    async def deny() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as caught:
            async with websockets.connect(ws_url(server, "/deny")):
                pass
        return caught.value

    refused = run(deny())
    assert refused.response.status_code == 401
    assert refused.response.headers["x-why"] == "token"
    assert refused.response.headers["content-type"] == "text/plain"
    assert bytes(refused.response.body) == b"no entry"


def test_unfinished_http_response_is_never_sent_and_the_connection_ends(
        start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app")
    sock = server.connect()
    sock.sendall(handshake("/deny-unfinished"))
    ws = RawWebSocket(sock)
    ws.expect_tcp_closed()  # no head, no half body: the client can tell it got no answer
    server.wait_for_log("returned without finishing its HTTP response to the WebSocket "
                        "handshake for /deny-unfinished")


def test_exception_before_accept_is_500_and_logged(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app")
    ws = RawWebSocket.connect(server, "/raise-before")
    assert ws.status.startswith(b"HTTP/1.1 500 "), ws.status
    server.wait_for_log("ValueError: refusing by accident")
    assert "exception in ASGI app for WebSocket /raise-before" in server.output


@pytest.mark.parametrize("what", ["header", "name", "subprotocol"])
def test_invalid_accept_is_500_and_its_bytes_are_never_written(start_server: ServerFactory,
                                                               what: str) -> None:
    server = start_server("apps.ws_app:app")
    ws = RawWebSocket.connect(server, f"/bad-accept?what={what}")
    assert ws.status.startswith(b"HTTP/1.1 500 "), ws.status
    assert b"injected" not in ws.body and b"injected" not in ws.headers, ws.headers
    ws.expect_tcp_closed()
    server.wait_for_log("exception in ASGI app for WebSocket /bad-accept")


@pytest.mark.parametrize("path", ["/raise-after", "/bad-close"])
def test_app_error_after_accept_closes_with_1011(start_server: ServerFactory, path: str) -> None:
    server = start_server("apps.ws_app:app")
    ws = RawWebSocket.connect(server, path)
    assert ws.accepted
    ws.send_frame(TEXT, b"trigger")
    ws.expect_close(1011, answer=True)
    server.wait_for_log(f"exception in ASGI app for WebSocket {path}")
    # The server carries on.
    again = RawWebSocket.connect(server, "/echo")
    again.send_frame(TEXT, b"still here")
    assert again.recv_data_frame().payload == b"still here"


def test_app_returning_after_accept_closes_with_1000(server: ServerProcess) -> None:
    ws = RawWebSocket.connect(server, "/scope")
    assert ws.recv_data_frame().opcode == TEXT
    ws.send_frame(TEXT, b"go")  # the app's receive() returns and it ends
    ws.expect_close(1000, answer=True)


# -- handshake validation ----------------------------------------------------------------


@pytest.mark.parametrize(("request_bytes", "reason"), [
    (handshake(omit=("Sec-WebSocket-Key",)), b"missing Sec-WebSocket-Key"),
    (handshake(key="c2hvcnQ="), b"Sec-WebSocket-Key must be 16 bytes"),
    (handshake(key="not base64 at all!!!!!!!"), b"Sec-WebSocket-Key must be 16 bytes"),
    (handshake(headers=[("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
     b"more than one Sec-WebSocket-Key"),
    (handshake(omit=("Sec-WebSocket-Version",)), b"missing Sec-WebSocket-Version"),
    (handshake(version="8"), b"unsupported Sec-WebSocket-Version"),
    (handshake(method="POST"), b"must use GET, not POST"),
    (handshake().replace(b"HTTP/1.1", b"HTTP/1.0", 1), b"needs HTTP/1.1"),
    # The HTTP/1.1 parser refuses these before the WebSocket checks run (HTTP/2:
    # test_h2_websocket.py::test_invalid_extended_connect_gets_400).
    (handshake(headers=[("Sec-WebSocket-Protocol", "chat\x01")]), b"header value"),
], ids=["no-key", "short-key", "bad-base64", "two-keys", "no-version", "version-8", "post",
        "http-1.0", "control-byte"])
def test_invalid_handshakes_get_400(server: ServerProcess, request_bytes: bytes,
                                    reason: bytes) -> None:
    sock = server.connect()
    sock.sendall(request_bytes)
    status, headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 400 "), status
    assert headers[b"connection"] == b"close"
    assert body.startswith(b"Bad Request") or b"Invalid" in body, body
    assert reason in body
    if b"Sec-WebSocket" in reason:
        # RFC 6455 4.4: a refused handshake names the version the server speaks.
        assert headers[b"sec-websocket-version"] == b"13"


def test_a_refused_head_handshake_gets_400_without_a_body(server: ServerProcess) -> None:
    sock = server.connect()
    sock.sendall(handshake(method="HEAD"))
    head, _, rest = recv_until_closed(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"\r\ncontent-length: " in head  # the length the body would have had
    assert rest == b""  # and not one byte of it


def test_ws_off_serves_upgrade_requests_as_plain_http(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws", "off")
    sock = server.connect()
    sock.sendall(handshake("/echo"))
    status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert body == b"plain http /echo"


def test_ws_setting_is_validated(start_server: ServerFactory) -> None:
    from conftest import assert_one_line_error, run_qactuar

    line = assert_one_line_error(run_qactuar("apps.ws_app:app", "--ws", "maybe"))
    assert "WS = 'maybe'" in line and "auto, on, off" in line


def test_upgrade_to_something_else_is_plain_http(server: ServerProcess) -> None:
    sock = server.connect()
    # (Upgrade: h2c is HTTP/2's own upgrade now: tests/test_http2.py.)
    sock.sendall(b"GET /irc HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\n"
                 b"Upgrade: IRC/6.9\r\n\r\n")
    status, _, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200") and body == b"plain http /irc"


# -- routing ----------------------------------------------------------------------------------


def test_apps_mounts_route_websockets(start_server: ServerFactory) -> None:
    server = start_server(env={"QACTUAR_APPS": json.dumps({"/chat": "apps.ws_app:app"})})

    async def scope() -> dict[str, Any]:
        async with websockets.connect(ws_url(server, "/chat/scope")) as ws:
            return json.loads(await ws.recv())

    shown = run(scope())
    assert (shown["path"], shown["root_path"]) == ("/chat/scope", "/chat")
    # No app at that path: the handshake is answered 404 by the server.
    with pytest.raises(InvalidStatus) as caught:
        run(websockets.connect(ws_url(server, "/elsewhere")))
    assert caught.value.response.status_code == 404


def test_websockets_client_sees_close_codes(server: ServerProcess) -> None:
    async def closed() -> ConnectionClosed:
        async with websockets.connect(ws_url(server, "/close?code=4003&reason=r")) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            return caught.value

    error = run(closed())
    assert error.rcvd is not None and (error.rcvd.code, error.rcvd.reason) == (4003, "r")


# -- TLS ----------------------------------------------------------------------------------------


def test_wss_scheme_over_tls(start_server: ServerFactory, tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    server = start_server("apps.ws_app:app", "--ssl-cert-path", str(cert_path),
                          "--ssl-key-path", str(key_path))
    context = ssl.create_default_context()
    ca.configure_trust(context)

    async def talk() -> tuple[dict[str, Any], str]:
        url = f"wss://{server.host}:{server.port}"
        async with websockets.connect(f"{url}/scope", ssl=context) as ws:
            shown = json.loads(await ws.recv())
        async with websockets.connect(f"{url}/echo", ssl=context) as ws:
            await ws.send("over TLS")
            return shown, await ws.recv()

    shown, echoed = run(talk())
    assert shown["scheme"] == "wss"
    assert echoed == "over TLS"


# -- WS=auto: the older name of `on` --------------------------------------------------------------


@pytest.mark.parametrize("setting", ["auto", "on"])
def test_ws_auto_and_on_both_serve_websocket(start_server: ServerFactory, setting: str) -> None:
    """`websockets` is a dependency, so `auto` has no missing-package branch: it means `on`."""
    server = start_server("apps.ws_app:app", "--ws", setting)
    sock = server.connect()
    sock.settimeout(5)
    sock.sendall(handshake("/echo"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"upgrade: websocket" in head.lower()

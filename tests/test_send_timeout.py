"""SEND_TIMEOUT: a client that stops reading a response is closed after that long (HTTP/1.1,
a stalled HTTP/2 stream is reset, WebSocket) and the server serves on; LIMIT_CONCURRENCY
counts WebSocket sessions (over HTTP/1.1 and HTTP/2)."""

from __future__ import annotations

import socket

import httpx

from conftest import ServerFactory, ServerProcess, wait_until
from h2_client import H2Client
from ws_client import RawWebSocket


def stalled_reader(server: ServerProcess, request: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills quickly
    sock.connect((server.host, server.port))
    sock.sendall(request)
    return sock  # and never read


def test_http1_client_that_stops_reading_is_closed(start_server: ServerFactory) -> None:
    server = start_server("apps.endless:app", "--send-timeout", "0.5")
    sock = stalled_reader(server, b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        server.wait_for_log(r"127\.0\.0\.1:\d+ stopped reading the response for 0\.5s "
                            r"\(SEND_TIMEOUT\): closing the connection")
        assert httpx.get(f"{server.url}/hello", timeout=5).text == "Hello, world!"
    finally:
        sock.close()


def test_websocket_client_that_stops_reading_is_closed(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--send-timeout", "0.5")
    ws = RawWebSocket.connect(server, "/flood?n=100000&size=65536")
    try:
        assert ws.accepted, ws.status
        server.wait_for_log(r"WebSocket 127\.0\.0\.1:\d+ stopped reading for 0\.5s "
                            r"\(SEND_TIMEOUT\): closing the connection")
    finally:
        ws.sock.close()


def test_limit_concurrency_counts_websocket_sessions(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--limit-concurrency", "1")
    first = RawWebSocket.connect(server, "/echo")
    assert first.accepted, first.status
    second = RawWebSocket.connect(server, "/echo")
    assert second.status.startswith(b"HTTP/1.1 503 "), second.status
    assert second.headers[b"retry-after"] == b"1"
    second.sock.close()
    first.close()

    def third_accepted() -> bool:
        third = RawWebSocket.connect(server, "/echo")
        third.sock.close()
        return third.accepted

    wait_until(third_accepted, what="a session once the first one ended")


def test_http2_stream_whose_window_stays_shut_is_reset(start_server: ServerFactory) -> None:
    server = start_server("apps.endless:app", "--send-timeout", "0.5")
    with H2Client(server.host, server.port, auto_window=False) as h2c:
        stream_id = h2c.request("/endless")
        result = h2c.streams[stream_id]
        h2c.wait_for(lambda: result.reset_code is not None, what="the stream reset")
        assert result.reset_code == 8  # CANCEL
    with H2Client(server.host, server.port) as h2c:
        assert h2c.get("/hello").body == b"Hello, world!"  # the server serves on
    server.wait_for_log(r"stopped reading HTTP/2 stream 1 for 0\.5s \(SEND_TIMEOUT\)")


def test_limit_concurrency_counts_http2_websocket_sessions(start_server: ServerFactory
                                                            ) -> None:
    from test_h2_websocket import open_websocket

    server = start_server("apps.ws_app:app", "--limit-concurrency", "1")
    with H2Client(server.host, server.port) as h2c:
        first = open_websocket(h2c, "/echo")
        h2c.wait_for(lambda: bool(h2c.streams[first].headers), what="the first session")
        assert h2c.streams[first].status == 200
        second = open_websocket(h2c, "/echo")
        h2c.wait_for(lambda: bool(h2c.streams[second].headers), what="the second answer")
        assert h2c.streams[second].status == 503

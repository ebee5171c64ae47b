"""SEND_TIMEOUT: a client that stops reading a response is closed after that long (HTTP/1.1
and WebSocket) and the server serves on; LIMIT_CONCURRENCY counts WebSocket sessions."""

from __future__ import annotations

import socket

import httpx

from conftest import ServerFactory, ServerProcess, wait_until
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

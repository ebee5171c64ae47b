"""WebSocket connection behaviour over time: keep-alive pings, the close-handshake
timeout, back-pressure both ways, and graceful shutdown (1001, SHUTDOWN_TIMEOUT).

Nothing here sleeps to let things settle: each test waits on a condition
with a deadline; the timeouts configured are short but the deadlines long.
"""

from __future__ import annotations

import select
import signal
import subprocess
import time
from pathlib import Path

from apps.lifespan_apps import EVENTS_VAR
from conftest import ServerFactory, _SocketReader, file_lines, read_response, wait_until
from ws_client import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    RawWebSocket,
    close_payload,
    frame,
    handshake,
)


def _events_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    events = tmp_path / "events.txt"
    return events, {EVENTS_VAR: str(events)}


# -- keep-alive pings ----------------------------------------------------------------


def test_answered_pings_keep_the_connection_open(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws-ping-interval", "0.3",
                          "--ws-ping-timeout", "1")
    ws = RawWebSocket.connect(server, "/echo")
    started = time.monotonic()
    payloads = []
    while time.monotonic() - started < 3:  # well past the ping timeout
        ping = ws.recv_frame()
        assert ping.opcode == PING, ping
        payloads.append(ping.payload)
        ws.send_frame(PONG, ping.payload)
    assert len(set(payloads)) == len(payloads) >= 3  # a fresh payload per ping
    ws.send_frame(TEXT, b"still open")
    assert ws.recv_data_frame().payload == b"still open"


def test_a_peer_that_stops_answering_pings_is_closed(start_server: ServerFactory,
                                                     tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", "--ws-ping-interval", "0.2",
                          "--ws-ping-timeout", "0.5", env=env)
    ws = RawWebSocket.connect(server, "/wait")
    assert ws.recv_frame().opcode == PING  # never answered
    closing = ws.recv_frame()
    assert (closing.opcode, closing.close_code) == (CLOSE, 1011)
    ws.expect_tcp_closed()
    wait_until(lambda: "/wait disconnect 1011 keepalive ping timeout" in file_lines(events),
               what="websocket.disconnect after the ping timeout")
    server.wait_for_log("did not answer a ping")


def test_no_ping_timeout_when_it_is_0(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws-ping-interval", "0.2",
                          "--ws-ping-timeout", "0")
    ws = RawWebSocket.connect(server, "/echo")
    for _ in range(3):  # none answered, and still no close frame
        assert ws.recv_frame().opcode == PING
    ws.send_frame(TEXT, b"still open")
    assert ws.recv_data_frame().payload == b"still open"


def test_no_pings_when_the_interval_is_0(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws-ping-interval", "0")
    ws = RawWebSocket.connect(server, "/echo")
    ws.sock.settimeout(1.5)
    try:
        data = ws.sock.recv(100)
    except TimeoutError:
        data = b""
    assert data == b""


# -- the close handshake has a timeout ---------------------------------------------------


def test_a_silent_peer_cannot_hold_the_close_handshake(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws-close-timeout", "0.5")
    ws = RawWebSocket.connect(server, "/close?code=1000")
    received = ws.recv_frame()
    assert (received.opcode, received.close_code) == (CLOSE, 1000)
    # The client never answers the close frame: the server gives up and closes.
    ws.expect_tcp_closed(timeout=10)
    server.wait_for_log("did not finish the close handshake")


def test_a_peer_that_closes_but_never_reads_cannot_hold_the_connection(
        start_server: ServerFactory, tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", "--no-ws-per-message-deflate",
                          "--ws-close-timeout", "0.5", env=env)
    ws = RawWebSocket.connect(server, "/flood?n=2000&size=65536")
    _count_stops_growing(events, "/flood sent")  # the socket buffers are full both ways
    # The client closes but never reads: the server's echo of the close waits behind
    # megabytes of messages that will never be read, so only WS_CLOSE_TIMEOUT ends it.
    ws.send_frame(CLOSE, close_payload(1000))
    # The server drops the connection: the app's pending send() fails.
    wait_until(lambda: "/flood send-error ClientDisconnected" in file_lines(events),
               timeout=8, what="the server to drop the connection")
    ws.close()


# -- back-pressure ------------------------------------------------------------------------


def _count_stops_growing(events: Path, prefix: str, quiet: float = 1.0,
                         timeout: float = 30) -> list[str]:
    """Wait until no new event with `prefix` has appeared for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        lines = [line for line in file_lines(events) if line.startswith(prefix)]
        if len(lines) != last:
            last, since = len(lines), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"events with {prefix!r} kept growing for {timeout}s")


def test_send_waits_while_the_peer_does_not_read(start_server: ServerFactory,
                                                 tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", "--no-ws-per-message-deflate", env=env)
    count, size = 2000, 65536  # 128 MiB: far more than any socket buffer
    ws = RawWebSocket.connect(server, f"/flood?n={count}&size={size}")
    wait_until(lambda: "/flood sent 1" in file_lines(events), what="the app to start sending")
    lines = _count_stops_growing(events, "/flood sent")
    assert f"/flood sent all {count}" not in lines, lines[-3:]
    assert len(lines) < count // 10 // 2, lines[-3:]  # stalled well before the end
    # Once the client reads, the app finishes.
    for index in range(count):
        received = ws.recv_data_frame()
        assert (received.opcode, len(received.payload)) == (BINARY, size)
        assert received.payload[:1] == bytes([index % 256])
    wait_until(lambda: f"/flood sent all {count}" in file_lines(events),
               what="the app to finish sending")


def test_reading_pauses_while_the_app_does_not_receive(start_server: ServerFactory,
                                                       tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", "--ws-max-size", "100000", env=env)
    ws = RawWebSocket.connect(server, "/hold")
    message = frame(BINARY, b"m" * 65536)
    count = 2000  # 128 MiB the server would otherwise read into memory
    data = message * count
    offset = 0
    ws.sock.setblocking(False)
    while offset < len(data):
        _, writable, _ = select.select([], [ws.sock], [], 2.0)
        if not writable:
            break  # the server stopped reading
        try:
            offset += ws.sock.send(data[offset:offset + 262144])
        except BlockingIOError:
            continue
    assert offset < len(data) // 4, f"the server read {offset} bytes from a client " \
                                    "whose app is not receiving"
    # The app starts receiving: everything arrives, nothing was lost.
    (tmp_path / "events.txt.go").touch()
    ws.sock.setblocking(True)
    ws.sock.sendall(data[offset:] + frame(TEXT, b"last"))
    wait_until(lambda: f"/hold received {count + 1}" in file_lines(events), timeout=60,
               what="the app to receive every message")


# -- shutdown -------------------------------------------------------------------------------


def test_sigterm_closes_websockets_with_1001(start_server: ServerFactory,
                                              tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", env=env)
    first = RawWebSocket.connect(server, "/wait")
    second = RawWebSocket.connect(server, "/echo")
    first.send_frame(TEXT, b"hello")
    wait_until(lambda: "/wait got 'hello'" in file_lines(events), what="the app to be running")

    server.send_signal(signal.SIGTERM)
    for ws in (first, second):
        ws.expect_close(1001, answer=True)
    wait_until(lambda: "/wait disconnect 1001 server shutting down" in file_lines(events),
               what="websocket.disconnect 1001 in the app")
    assert server.proc.wait(timeout=15) == 0, server.output


def test_shutdown_timeout_bounds_websockets_that_never_end(start_server: ServerFactory,
                                                           tmp_path: Path) -> None:
    _, env = _events_env(tmp_path)
    # The app never receives and the client never answers the close frame; only
    # SHUTDOWN_TIMEOUT (not the much longer close timeout) can end this.
    server = start_server("apps.ws_app:app", "--shutdown-timeout", "1",
                          "--ws-close-timeout", "120", env=env)
    ws = RawWebSocket.connect(server, "/hold")
    assert ws.accepted
    server.send_signal(signal.SIGTERM)
    received = ws.recv_frame()
    assert (received.opcode, received.close_code) == (CLOSE, 1001)
    try:
        code = server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"an open WebSocket kept the server alive:\n{server.output}") \
            from None
    assert code == 0, server.output
    assert "Shutdown timeout" in server.output


def test_a_peer_that_sends_pings_but_never_reads_pongs_is_not_read_from(
        start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app", "--ws-ping-interval", "0")
    ws = RawWebSocket.connect(server, "/echo")
    data = frame(PING, b"p" * 125) * 500_000  # 65 MB of pings, 63 MB of pongs owed
    offset = 0
    ws.sock.setblocking(False)
    while offset < len(data):
        _, writable, _ = select.select([], [ws.sock], [], 2.0)
        if not writable:
            break  # the server stopped reading
        try:
            offset += ws.sock.send(data[offset:offset + 262144])
        except BlockingIOError:
            continue
    assert offset < len(data) // 4, f"the server read {offset} bytes of pings from a " \
                                    "client that reads none of the pongs"
    # Reading pongs lets the server read on: the client can send more pings.
    pong = frame(PONG, b"p" * 125, masked=False)
    received = bytearray(_SocketReader(ws.sock).buffer)
    ws.sock.setblocking(True)
    ws.sock.settimeout(10)
    ping_size = len(frame(PING, b"p" * 125))
    while len(received) < offset // ping_size * len(pong):  # a pong per ping sent so far
        chunk = ws.sock.recv(1 << 20)
        assert chunk, "connection closed"
        received += chunk
    assert received[:len(pong) * 1000] == pong * 1000
    more = data[offset:offset + 1_000_000]
    ws.sock.sendall(more)  # would time out if the server had not resumed reading


def test_a_websocket_accepted_during_shutdown_is_closed_with_1001(start_server: ServerFactory,
                                                                   tmp_path: Path) -> None:
    events, env = _events_env(tmp_path)
    server = start_server("apps.ws_app:app", env=env)
    sock = server.connect()
    sock.sendall(handshake("/slow-accept"))
    wait_until(lambda: "/slow-accept waiting" in file_lines(events), what="the handshake")
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("Shutting down")
    (tmp_path / "events.txt.go").touch()  # the app accepts now
    status, _, _ = read_response(sock)
    assert status.startswith(b"HTTP/1.1 101"), status
    RawWebSocket(sock).expect_close(1001, answer=True)
    assert server.proc.wait(timeout=15) == 0, server.output

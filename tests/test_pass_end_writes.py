"""HTTP/1.1 responses that finish together are written together.

A response finished while others are in flight waits; the last one in flight
writes them all, or the end of the loop pass does (ServerState.write_at_pass_end;
docs/benchmarks.md, "Responses written per loop pass").

What deferring a response's bytes could break: a lone response made to wait, an
answer lost or sent on the wrong connection, and the order of what one connection
gets when a deferred answer is followed by bytes written at once (a streamed
response, a 100 Continue, an error, a close, a hand-over).  And one connection
whose write fails must not keep the others' answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest

from conftest import ServerFactory, read_response
from inprocess import InProcessServer
from qactuar.asgi.router import Router
from qactuar.config import Config
from qactuar.server_state import ServerState


class GatedApp:
    """Holds requests to /gate/N until N of them have arrived, then answers them all
    in the same loop pass; /stream streams; /slow waits until released; / answers.

    `events` records, in order, ("sent", client port) when an app's last
    `send()` returned and ("written", client port) when the server wrote to that
    client's transport (the test wraps the transports' `write`).
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.arrived = 0
        self.gate = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        port = scope["client"][1]
        if path.startswith("/gate/"):
            self.arrived += 1
            if self.arrived >= int(path.rsplit("/", 1)[1]):
                self.gate.set()
            await self.gate.wait()
        elif path == "/slow":
            await self.release.wait()
        elif path == "/upload":
            while (await receive()).get("more_body"):
                pass
        body = f"{path} for {port}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        if path == "/stream":
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": body})
        self.events.append(("sent", port))


def get(path: str, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), connection)


def recording_writes(connection: Any, app: GatedApp, port: int) -> None:
    """Note in `app.events` each write the server makes to this connection."""
    transport = connection.transport
    write = transport.write

    def noted_write(data: Any) -> None:
        app.events.append(("written", port))
        write(data)

    transport.write = noted_write


def bodies(data: bytes) -> list[bytes]:
    """The bodies of the Content-Length responses in `data`, in order."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        found.append(rest[:length])
        data = rest[length:]
    return found


def test_responses_finished_in_one_pass_are_written_after_all_of_them_and_each_to_its_client(
        ) -> None:
    app = GatedApp()
    with InProcessServer(app) as server:
        ports = list(range(50001, 50009))
        connections = []
        for port in ports:
            connection = server.connect(client=("127.0.0.1", port))
            recording_writes(connection, app, port)
            connections.append(connection)
        for connection in connections:
            connection.feed(get(f"/gate/{len(ports)}"))
        for port, connection in zip(ports, connections, strict=True):
            assert bodies(connection.read()) == [f"/gate/{len(ports)} for {port}".encode()]
        sent = [index for index, (kind, _) in enumerate(app.events) if kind == "sent"]
        written = [index for index, (kind, _) in enumerate(app.events) if kind == "written"]
        assert len(sent) == len(written) == len(ports)
        # No answer is written before the others' apps have finished: the last of
        # them, alone in flight by then, writes its own and every waiting one in
        # its send(), in one go.
        assert min(written) > sorted(sent)[-2], app.events
        assert written == list(range(min(written), min(written) + len(ports))), app.events
        assert server.tracebacks() == []


def test_a_lone_response_is_written_at_once_not_at_the_end_of_the_pass() -> None:
    app = GatedApp()
    with InProcessServer(app) as server:
        connection = server.connect(client=("127.0.0.1", 50001))
        recording_writes(connection, app, 50001)
        assert bodies(connection.send(get("/"))) == [b"/ for 50001"]
        # Written inside the app's send(), before it returned.
        assert app.events == [("written", 50001), ("sent", 50001)]


@pytest.mark.parametrize("follow_up, expected_tail", [
    (get("/stream"), b"three"),
    (get("/closing", close=True), b"/closing for 50002"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", b"Bad Request"),
    (b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
     b"Content-Length: 5\r\n\r\n", b"100 Continue"),
], ids=["streamed", "close", "error", "continue"])
def test_a_deferred_answer_goes_before_what_the_connection_writes_next(
        follow_up: bytes, expected_tail: bytes) -> None:
    app = GatedApp()
    with InProcessServer(app) as server:
        # A request kept in flight elsewhere: answers on the other connection are
        # then not alone, and wait for the end of their pass.
        held = server.connect(client=("127.0.0.1", 50001))
        held.feed(get("/slow"))
        connection = server.connect(client=("127.0.0.1", 50002))
        written = connection.send(get("/") + follow_up)
        first = b"/ for 50002"
        assert first in written and expected_tail in written, written
        assert written.index(first) < written.index(expected_tail), written
        if b"100 Continue" in expected_tail:
            written += connection.send(b"hello")
            assert written.endswith(b"/upload for 50002"), written
        app.release.set()
        held.settle()
        assert bodies(held.read()) == [b"/slow for 50001"]
        assert server.tracebacks() == []


def test_pipelined_answers_on_a_busy_server_arrive_in_order() -> None:
    app = GatedApp()
    with InProcessServer(app) as server:
        held = server.connect(client=("127.0.0.1", 50001))
        held.feed(get("/slow"))
        connection = server.connect(client=("127.0.0.1", 50002))
        pipeline = get("/a") + get("/stream") + get("/b") + get("/c")
        written = connection.send(pipeline)
        assert all(part in written for part in (b"/a for", b"three", b"/b for", b"/c for"))
        positions = [written.index(part) for part in
                     (b"/a for", b"three", b"/b for", b"/c for")]
        assert positions == sorted(positions), written
        app.release.set()
        held.settle()
        assert bodies(held.read()) == [b"/slow for 50001"]


class Failing:
    def _write_unsent(self) -> None:
        raise OSError("this connection's write fails")


class Writer:
    def __init__(self) -> None:
        self.writes = 0

    def _write_unsent(self) -> None:
        self.writes += 1


def test_a_connection_whose_write_fails_does_not_keep_the_others_answers(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        config = Config()
        state = ServerState(config, Router([]), loop)
        first, second = Writer(), Writer()
        state.write_at_pass_end(first)
        state.write_at_pass_end(Failing())
        state.write_at_pass_end(second)
        assert (first.writes, second.writes) == (0, 0)  # not before the pass has run
        with caplog.at_level(logging.ERROR, logger="qt_exception"):
            loop.run_until_complete(asyncio.sleep(0))
        assert (first.writes, second.writes) == (1, 1)
        assert state.pass_end_writers == []
        assert any("writing a connection's response failed" in record.getMessage()
                   for record in caplog.records)
        # The next pass schedules its own write.
        state.write_at_pass_end(first)
        loop.run_until_complete(asyncio.sleep(0))
        assert first.writes == 2
    finally:
        loop.close()


@pytest.mark.models("async", "prefork")
def test_many_clients_over_real_sockets_each_get_their_own_answers(
        start_server: ServerFactory) -> None:
    """The real server under concurrent load: every answer complete, and on its own socket."""
    server = start_server("apps.scope_echo:app")
    errors: list[str] = []

    def client(number: int) -> None:
        try:
            with server.connect(timeout=10) as sock:
                for request in range(40):
                    path = f"/client{number}/request{request}"
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    status, _, body = read_response(sock, timeout=10)
                    if b" 200 " not in status or json.loads(body)["path"] != path:
                        errors.append(f"{path}: {status!r} {body[:80]!r}")
        except OSError as exc:
            errors.append(f"client {number}: {exc!r}")

    threads = [threading.Thread(target=client, args=(number,)) for number in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []

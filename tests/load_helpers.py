"""Helpers of the `qactuar load` tests: run the command, and small raw-socket servers.

`RawServer` is an asyncio server in a thread of the test process whose
behaviour per request head is a function the test gives: answer fixed bytes,
stall, close mid-response, or send garbage.  It counts the request heads it saw,
so a test can wait for load to arrive (never sleep).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import child_env

HELLO = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n\r\n"
         b"Hello, world!")


def run_load(*args: str, timeout: float = 60, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`python -m qactuar.load ARGS` to its end."""
    return subprocess.run([sys.executable, "-m", "qactuar.load", *args], capture_output=True,
                          text=True, timeout=timeout, env=child_env(), cwd=cwd)


def start_load(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "qactuar.load", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())


def report_counts(output: str) -> dict[str, int]:
    """The 'requests:' line of the report as numbers by name."""
    for line in output.splitlines():
        if line.startswith("requests: "):
            return {name: int(count) for count, name in
                    (part.split(" ", 1) for part in line[len("requests: "):].split(", "))}
    raise AssertionError(f"no requests line in:\n{output}")


def error_counts(output: str) -> dict[str, int]:
    for line in output.splitlines():
        if line.startswith("errors: "):
            return {name: int(count) for count, name in
                    (part.split(" ", 1) for part in line[len("errors: "):].split(", "))}
    raise AssertionError(f"no errors line in:\n{output}")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def accept_websocket(sock: socket.socket) -> bool:
    """Read a WebSocket upgrade request from `sock` and accept it (False: the peer left
    before its request was whole)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        head += chunk
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                              .digest())
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                 b"connection: Upgrade\r\nsec-websocket-accept: " + accept + b"\r\n\r\n")
    return True


@contextmanager
def raw_websocket_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A thread per connection on a free port: each connection's upgrade is accepted, then
    `handle(sock)` runs; yields the server's ws:// URL."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            if accept_websocket(self.request):
                handle(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# What a RawServer does with one request head: call `respond(bytes)` now or later,
# or act on the transport itself.
Behaviour = Callable[["RawConnection", int], None]


class RawConnection(asyncio.Protocol):
    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.pending + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            buffer = buffer[end + 4:]
            self.server.requests += 1
            self.server.behaviour(self, self.server.requests)
        self.pending = buffer

    def respond(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class RawServer:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 in a thread; `behaviour` answers."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the raw server did not start"

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(self.loop.create_server(
            lambda: RawConnection(self), "127.0.0.1", 0, backlog=512))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()
        server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.loop.call_later(delay, callback)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hello(connection: RawConnection, number: int) -> None:
    connection.respond(HELLO)


class StallOnce:
    """Answers at once, except that `after` seconds past the first request the server
    stops answering for `stall` seconds (every connection), then answers what waited."""

    def __init__(self, after: float, stall: float) -> None:
        self.after = after
        self.stall = stall
        self.first = 0.0
        self.stall_until = 0.0
        self.stalled = False

    def __call__(self, connection: RawConnection, number: int) -> None:
        now = time.monotonic()
        if not self.first:
            self.first = now
        if not self.stalled and now - self.first >= self.after:
            self.stalled = True
            self.stall_until = now + self.stall
        if now < self.stall_until:
            connection.server.call_later(self.stall_until - now,
                                         lambda: connection.respond(HELLO))
        else:
            connection.respond(HELLO)

"""The in-process test layer: the real protocols fed bytes through a fake transport.

`InProcessServer` builds what a serving process builds (a `Config`, the mounts
of `build_mounts`, a `ServerState` and its `Router`) on an event loop of its own,
and `connect()` makes one connection: the protocol the server would make for an
accepted socket (`new_connection_protocol`, the one place that knows how),
given a `FakeTransport`.  The connection then speaks only the asyncio protocol
interface (`connection_made`, `data_received`, `eof_received`,
`connection_lost`) and reads back what the protocol wrote and whether it closed.

Each `send()` runs the loop until the server is idle: nothing written, no
close, no task of the loop changing for several turns in a row.  Waiting on
wall-clock things (a timeout, an app that sleeps) is `wait_for(condition)`,
with a deadline.  Errors the loop reports (an exception in a callback, a task
whose exception nobody read) and the records of the server's loggers are kept,
so a test can check that a client's mistake cost no traceback.

HTTP/2 connections open as HTTP/1.1 and switch by prior knowledge, as on a
real port; `H2Peer` (tests/h2_client.py) speaks h2 to them as the client.
A TLS connection gets the server side of a real TLS session whose handshake
ran in memory (`tls_session`), so ALPN chooses as it does on a TLS port.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trustme

from h2_client import H2Peer
from qactuar.asgi.router import Router
from qactuar.config import Config
from qactuar.protocols.http1 import HTTP1Protocol
from qactuar.server import build_mounts
from qactuar.server_state import ServerState

# How many turns of the loop in a row must pass with nothing happening before a
# connection counts as idle.  A wake-up (a future set, a task stepped) takes a
# turn or two; this leaves a wide margin and still costs well under a millisecond.
QUIET_TURNS = 12
# Far more turns than any exchange in these tests needs: an exchange still busy
# after this many is a loop that never settles (a busy app, a bug), not slow.
MAX_TURNS = 100_000
SERVER_LOGGERS = ("qt_server", "qt_access", "qt_exception")
CLIENT = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 8000)


def new_connection_protocol(state: ServerState) -> Any:
    """The protocol a serving process makes for each accepted connection.

    The one place the in-process layer builds a protocol: it mirrors what
    `qactuar.models.aio` passes to `loop.create_server`.
    """
    return HTTP1Protocol(state)


class FakeTransport(asyncio.Transport):
    """An `asyncio.Transport` that keeps what is written and tells its protocol when it closes.

    Like a socket transport, `close()` and `abort()` call the protocol's
    `connection_lost` on a later turn of the loop, and a protocol may hand the
    transport to another (`set_protocol`).  Writes after `close()` are kept
    apart (`late_writes`): a real transport would drop them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any,
                 extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._loop = loop
        self._protocol = protocol
        self.written = bytearray()
        self.late_writes = bytearray()
        self.closing = False  # close() or abort() was called
        self.aborted = False
        self.lost = False  # connection_lost was called
        self.reading = True
        self.write_buffer_limits = (64 * 1024, 16 * 1024)
        self.eof_written = False
        # What the client sent that the protocol has not been given yet: its reads, and
        # None for its half-close (EOF, like data, waits while reading is paused).
        self.inbox: list[bytes | None] = []
        # A client that stops reading: what is written waits here, and above the high
        # mark the protocol is told to pause writing, as a socket transport does.
        self.client_reading = True
        self.buffered = bytearray()
        self.writing_paused = False

    # -- what the protocol calls ------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            self.late_writes += data
        elif self.client_reading:
            self.written += data
        else:
            self.buffered += data
            if not self.writing_paused and len(self.buffered) > self.write_buffer_limits[0]:
                self.writing_paused = True
                self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self.eof_written = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self._loop.call_soon(self.deliver)

    def is_reading(self) -> bool:
        return self.reading and not self.closing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = 64 * 1024 if high is None else high
        self.write_buffer_limits = (high, high // 4 if low is None else low)

    def get_write_buffer_size(self) -> int:
        return len(self.buffered)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.write_buffer_limits[1], self.write_buffer_limits[0]

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    # -- what the client side does -----------------------------------------------

    def deliver(self) -> None:
        """Give the protocol the client's reads (and half-close) while it reads and the
        connection is open; after an EOF it closes unless the protocol keeps it open."""
        while self.inbox and self.reading and not self.closing:
            data = self.inbox.pop(0)
            if data is not None:
                self._protocol.data_received(data)
            elif not self._protocol.eof_received():
                self.close()

    def client_reads(self, size: int | None = None) -> None:
        """The client reads `size` of the buffered bytes, or all of them (and from then on
        reads at once again); at the low mark the protocol is told to resume writing."""
        if size is None:
            size = len(self.buffered)
            self.client_reading = True
        self.written += self.buffered[:size]
        del self.buffered[:size]
        if self.writing_paused and len(self.buffered) <= self.write_buffer_limits[1]:
            self.writing_paused = False
            self._protocol.resume_writing()

    def client_gone(self) -> None:
        """The peer went away (a reset): the protocol hears it at once."""
        if not self.lost:
            self.closing = True
            self._connection_lost(ConnectionResetError("the client went away"))

    def _connection_lost(self, exc: Exception | None) -> None:
        if not self.lost:
            self.lost = True
            self._protocol.connection_lost(exc)


class _LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class InProcessServer:
    """What one serving process holds, on a loop of its own; `connect()` opens connections.

    `app` is what the command line takes ("module:attr", or an app object);
    `settings` are `Config` fields (`MAX_BODY_SIZE=1000`).  Use it as a context
    manager, or call `close()`: the loop is closed, the loggers restored, and any
    error the loop reported (an exception in a callback, a task's exception nobody
    read) fails the test.
    """

    def __init__(self, app: Any, scheme: str = "http", **settings: Any) -> None:
        self.config = Config(**settings)
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self._logs = _LogRecords()
        self._log_levels: list[tuple[logging.Logger, int]] = []
        for name in SERVER_LOGGERS:
            logger = logging.getLogger(name)
            self._log_levels.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self._logs)
        self.mounts = build_mounts(self.config, app)
        self.state = ServerState(self.config, Router(self.mounts), self.loop, scheme)
        self.connections: list[Connection] = []
        for mount in self.mounts:
            self.loop.run_until_complete(mount.lifespan.startup())

    @property
    def log_records(self) -> list[logging.LogRecord]:
        return list(self._logs.records)

    def tracebacks(self) -> list[str]:
        """Every logged record with an exception, and every error the loop reported."""
        found = [record.getMessage() for record in self._logs.records if record.exc_info]
        found += [str(context.get("message")) for context in self.loop_errors]
        return found

    def connect(self, client: tuple[str, int] = CLIENT, server: tuple[str, int] = SERVER,
                tls: ssl.SSLObject | None = None, first: bytes = b"") -> Connection:
        """A new connection from `client`, made as the server makes one on accept.

        `tls`: the server side of a TLS session (`tls_session`); the transport then
        carries its plaintext, as asyncio's TLS transport does.  `first`: bytes the
        client sends at once, read on the loop turn after the connection is made (a
        test of a short HEADER_TIMEOUT must not depend on how long the test takes to
        call `feed`).
        """
        extra: dict[str, Any] = {"peername": client, "sockname": server}
        if tls is not None:
            extra.update(ssl_object=tls, sslcontext=tls.context, peercert=tls.getpeercert())
        connection = Connection(self, new_connection_protocol(self.state), extra, first)
        self.connections.append(connection)
        return connection

    def h2_connect(self, tls: ssl.SSLObject | None = None, **kwargs: Any) -> InProcessH2Client:
        """A new connection on which an h2 client speaks HTTP/2: with prior knowledge, or
        over `tls` (`kwargs`: those of InProcessH2Client and H2Peer)."""
        scheme = b"http" if tls is None else b"https"
        return InProcessH2Client(self.connect(tls=tls), scheme=scheme, **kwargs)

    def close(self) -> None:
        try:
            for connection in self.connections:
                self.loop.call_soon(connection.transport.client_gone)
            self.loop.run_until_complete(asyncio.sleep(0))
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        finally:
            self.loop.close()
            for logger, level in self._log_levels:
                logger.removeHandler(self._logs)
                logger.setLevel(level)
        # An exception in a callback or a task nobody awaited is a bug of the server,
        # whatever the test was about.
        assert not self.loop_errors, self.loop_errors

    def __enter__(self) -> InProcessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Connection:
    """One client connection to an `InProcessServer`, driven a step at a time."""

    def __init__(self, server: InProcessServer, protocol: Any, extra: dict[str, Any],
                 first: bytes = b"") -> None:
        self.server = server
        self.loop = server.loop
        self.transport = FakeTransport(self.loop, protocol, extra)
        self.read_at = 0
        # A transport calls its protocol from the running loop, never from outside it.
        self.loop.call_soon(protocol.connection_made, self.transport)
        if first:
            self._client_sends(first)
        self.settle()

    @property
    def protocol(self) -> Any:
        """The protocol serving the connection now (it changes on a hand-over)."""
        return self.transport.get_protocol()

    @property
    def written(self) -> bytes:
        """Every byte the server has written on this connection."""
        return bytes(self.transport.written)

    @property
    def closed(self) -> bool:
        """Whether the server closed (or aborted) the connection."""
        return self.transport.closing

    def send(self, data: bytes, pieces: int = 0) -> bytes:
        """`feed(data, pieces)`, then return what the server wrote since the last read."""
        self.feed(data, pieces)
        return self.read()

    def feed(self, data: bytes, pieces: int = 0) -> None:
        """Deliver `data` (in reads of `pieces` bytes, if given), running until idle after each.

        As with a socket transport, nothing is delivered while the protocol has
        paused reading (it waits for `resume_reading`), nor once the server has
        closed the connection.
        """
        size = pieces or len(data) or 1
        for at in range(0, len(data), size):
            self._client_sends(data[at:at + size])
            self.settle()

    def feed_eof(self) -> None:
        """The client half-closes (the protocol hears it once it reads); run until idle."""
        self._client_sends(None)
        self.settle()

    def _client_sends(self, data: bytes | None) -> None:
        """Queue a read (None: the half-close) for the protocol on the loop's next turn."""
        self.transport.inbox.append(data)
        self.loop.call_soon(self.transport.deliver)

    def client_stops_reading(self) -> None:
        """From now on what the server writes waits in the transport's buffer (a slow
        client) until `client_reads`."""
        self.transport.client_reading = False

    def client_reads(self, size: int | None = None) -> None:
        """The slow client reads `size` bytes of the buffer (all, if None, and reads at
        once from then on); then run until idle."""
        self.loop.call_soon(self.transport.client_reads, size)
        self.settle()

    def disconnect(self) -> None:
        """The client goes away without a word."""
        self.loop.call_soon(self.transport.client_gone)
        self.settle()

    def unread(self) -> bytes:
        """What the server wrote since the last read, left to be read."""
        return bytes(self.transport.written[self.read_at:])

    def read(self) -> bytes:
        """What the server wrote since the last read."""
        data = bytes(self.transport.written[self.read_at:])
        self.read_at = len(self.transport.written)
        return data

    def read_until_closed(self) -> bytes:
        """What the server wrote since the last read; fails if it has not closed."""
        self.settle()
        assert self.closed, f"the server did not close the connection; it wrote {self.written!r}"
        return self.read()

    def settle(self) -> None:
        """Run the loop until nothing happens for `QUIET_TURNS` turns in a row."""
        self.loop.run_until_complete(self._settle())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5,
                 what: str = "") -> None:
        """Run the loop (timers too) until `condition` holds; fail after `timeout` seconds."""
        if not self.run_until(condition, timeout):
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"the server wrote {self.written!r}")

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Run the loop (timers too) until `condition` holds or `timeout` seconds pass;
        then until idle.  Whether the condition held."""
        async def until() -> bool:
            deadline = self.loop.time() + timeout
            while not condition():
                if self.loop.time() > deadline:
                    return False
                await asyncio.sleep(0.001)
            return True
        held = self.loop.run_until_complete(until())
        self.settle()
        return held

    async def _settle(self) -> None:
        quiet = 0
        last = self._activity()
        for _ in range(MAX_TURNS):
            await asyncio.sleep(0)
            now = self._activity()
            if now == last:
                quiet += 1
                if quiet >= QUIET_TURNS:
                    return
            else:
                quiet = 0
                last = now
        raise AssertionError(f"the server never went idle; it wrote {self.written!r}")

    def _activity(self) -> tuple[Any, ...]:
        transport = self.transport
        tasks = asyncio.all_tasks(self.loop)
        tasks.discard(asyncio.current_task(self.loop))  # type: ignore[arg-type]
        return (len(transport.written), len(transport.buffered), transport.closing,
                transport.lost, len(transport.inbox), id(transport.get_protocol()),
                frozenset(tasks))


class InProcessH2Client(H2Peer):
    """An h2 client (h2_client.H2Peer) on an in-process `Connection`."""

    def __init__(self, connection: Connection, pieces: int = 0, scheme: bytes = b"http",
                 **kwargs: Any) -> None:
        self.connection = connection
        self.pieces = pieces  # deliver what the client sends in reads of this many bytes
        super().__init__(authority=b"test", scheme=scheme, **kwargs)

    def send_raw(self, data: bytes) -> None:
        self.connection.feed(data, self.pieces)

    def pump(self, timeout: float = 5) -> bool:
        connection = self.connection
        connection.run_until(lambda: bool(connection.unread()) or connection.closed, timeout)
        data = connection.read()
        if data:
            self.receive(data)
            return True
        self.closed = connection.closed
        return not self.closed


def tls_session(client_alpn: list[str]) -> ssl.SSLObject:
    """The server side of a TLS session whose handshake ran in memory: a certificate
    from trustme's CA, the server offering h2 and http/1.1 by ALPN, the client
    `client_alpn`.  What a TLS transport hands the protocol as `ssl_object`."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("test").configure_cert(server_context)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    client_context.set_alpn_protocols(client_alpn)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, client_in = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(server_in, to_client, server_side=True)
    client = client_context.wrap_bio(client_in, to_server, server_hostname="test")
    done: list[ssl.SSLObject] = []
    for _ in range(10):  # a handshake takes two or three round trips
        for side in (client, server):
            if side not in done:
                try:
                    side.do_handshake()
                    done.append(side)
                except ssl.SSLWantReadError:
                    pass
        server_in.write(to_server.read())
        client_in.write(to_client.read())
        if len(done) == 2:
            return server
    raise AssertionError("the in-memory TLS handshake did not finish")


@contextmanager
def serving(app: Any, **settings: Any) -> Iterator[InProcessServer]:
    """`with serving("apps.basic:app", MAX_BODY_SIZE=1000) as server:`."""
    server = InProcessServer(app, **settings)
    try:
        yield server
    finally:
        server.close()

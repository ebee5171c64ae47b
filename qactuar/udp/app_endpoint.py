"""An ASGI app on a UDP socket: the `udp` scope (a Qactuar extension of ASGI).

One app call per UDP_BINDS socket and serving process, for as long as the
process serves: `receive()` gives `{"type": "udp.receive", "data", "client",
"server"}` per datagram (the field names of the ASGI UDP draft of Channels
1.x), and `{"type": "udp.disconnect"}` once the server shuts down;
`send({"type": "udp.send", "data", "client"})` sends a datagram to `client`.
Datagrams wait in a bounded queue (UDP_QUEUE_SIZE); what arrives while it is
full is dropped and counted.  The app must take the scope: one that raises or
returns before its first `receive()` is a start-up error (`accepted`).
This module never parses a protocol: a datagram's bytes are the app's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from qactuar.asgi import ASGI_SPEC_VERSION
from qactuar.logs import exception_logger

if TYPE_CHECKING:
    from qactuar.asgi.router import Mount
    from qactuar.server_state import ServerState
    from qactuar.udp.counters import DatagramCounters

DISCONNECT = {"type": "udp.disconnect"}


class UDPAppEndpoint(asyncio.DatagramProtocol):
    def __init__(self, state: ServerState, mount: Mount, counters: DatagramCounters,
                 queue_size: int) -> None:
        self.state = state
        self.mount = mount
        self.counters = counters
        self.queue: deque[tuple[bytes, tuple[str, int]]] = deque()
        self.queue_size = queue_size
        self.transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] | None = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self._waiter: asyncio.Future[None] | None = None
        # Set once the app has called receive() (it takes the scope) or has ended.
        self.accepted: asyncio.Future[BaseException | None] = state.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        name = transport.get_extra_info("sockname")
        self.server = (str(name[0]), int(name[1]))
        scope = {"type": "udp", "asgi": {"version": "3.0", "spec_version": ASGI_SPEC_VERSION},
                 "server": self.server, "state": self.mount.state.copy(), "extensions": {}}
        self.task = self.state.loop.create_task(self._run(scope), name="qactuar udp app")
        self.state.tasks.add(self.task)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(self.queue) >= self.queue_size:
            self.counters.note("udp_queue_drops", "UDP receive queue full (%d datagrams) on "
                               "%s: dropping", self.queue_size, self.server)
            return
        self.queue.append((data, (str(addr[0]), int(addr[1]))))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable about an earlier send: nothing to do

    def stop(self) -> None:
        """Shutting down: receive() returns udp.disconnect once the queue is empty."""
        self.closing = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        if not self.accepted.done():
            self.accepted.set_result(None)
        while not self.queue:
            if self.closing:
                return DISCONNECT
            self._waiter = self.state.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data, client = self.queue.popleft()
        return {"type": "udp.receive", "data": data, "client": client, "server": self.server}

    async def send(self, message: dict[str, Any]) -> None:
        problem = _send_problem(message)
        if problem is not None:
            self.counters.count("udp_bad_send")
            raise RuntimeError(f"ASGI app sent {problem}")
        client = message["client"]
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(bytes(message["data"]), (client[0], client[1]))

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.mount.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            if not self.accepted.done():
                self.accepted.set_result(exc)  # start-up fails with its message
            else:
                exception_logger.error("exception in ASGI app on UDP %s", self.server,
                                       exc_info=exc)
        finally:
            self.state.tasks.discard(self.task)  # type: ignore[arg-type]
            if not self.accepted.done():
                self.accepted.set_result(RuntimeError("it returned before its first receive()"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _send_problem(message: Any) -> str | None:
    """What is wrong with a message a UDP app sent, or None for a good `udp.send`."""
    if not isinstance(message, dict) or message.get("type") != "udp.send":
        kind = message.get("type") if isinstance(message, dict) else message
        return f"{kind!r} on a udp scope (expected 'udp.send')"
    if not isinstance(message.get("data"), bytes | bytearray | memoryview):
        return "udp.send whose data is not bytes"
    client = message.get("client")
    if (not isinstance(client, tuple | list) or len(client) != 2
            or not isinstance(client[0], str) or not isinstance(client[1], int)):
        return f"udp.send with client {client!r}: expected (host, port)"
    return None

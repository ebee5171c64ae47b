"""Connection pools, one per origin, with limits.

A `Pool` hands out a request slot on one of its connections: an idle HTTP/1.1
connection (or one with pipelining room), or an HTTP/2 connection with a free
stream (up to the peer's MAX_CONCURRENT_STREAMS, or our own lower limit).
When none is free it opens another connection while the origin has fewer than
`max_connections_per_origin`; otherwise the request waits its turn (the pool
timeout).  While the first connection to an origin is still being opened and
we do not yet know whether it will speak HTTP/2, other requests wait for it
instead of opening their own: one HTTP/2 connection serves them all.
A connection that closes leaves the pool; nothing else is shared between
requests, so one request's failure never poisons the next.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from qactuar.client.connect import open_connection
from qactuar.client.errors import PoolTimeout, ShutdownError
from qactuar.client.urls import Origin


class Pool:
    """The connections of one origin."""

    def __init__(self, settings: Any, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.origin = origin
        self.loop = loop
        self.connections: list[Any] = []
        self.opening = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        # Whether the origin speaks HTTP/2: known at once unless TLS's ALPN will tell.
        self.http2: bool | None = None
        if settings.http2 == "prior-knowledge" and not origin.is_tls:
            self.http2 = True
        elif not settings.http2 or not origin.is_tls:
            self.http2 = False
        self.limit = settings.limits.max_connections_per_origin
        self.expiry = settings.limits.keepalive_expiry
        self.sweeper: asyncio.TimerHandle | None = None
        self.closed = False
        self.absolute_form = settings.proxy is not None and settings.proxy.kind == "http" \
            and not origin.is_tls

    def take(self) -> Any:
        """A connection with one request slot reserved for the caller, if one is free
        now (no coroutine: the common case costs a loop over a short list)."""
        for connection in reversed(self.connections):
            if connection.free > 0:
                connection.free -= 1
                return connection
        return None

    async def acquire(self, pool_timeout: float | None) -> Any:
        """A connection with one request slot reserved for the caller; opens one or
        waits for one (at most `pool_timeout` seconds) when none is free."""
        deadline = None if pool_timeout is None else self.loop.time() + pool_timeout
        while True:
            for connection in reversed(self.connections):
                if connection.free > 0:
                    connection.free -= 1
                    return connection
            # Open another connection, unless one is being opened and may turn out
            # to be HTTP/2 (which would serve us too).
            may_open = self.opening == 0 or self.http2 is False
            if may_open and len(self.connections) + self.opening < self.limit:
                return await self._open()
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            timer = None
            if deadline is not None:
                if deadline <= self.loop.time():
                    raise PoolTimeout(f"no connection to {self.origin.host}:{self.origin.port} "
                                      f"became free within {pool_timeout}s")
                timer = self.loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                raise PoolTimeout(f"no connection to {self.origin.host}:{self.origin.port} "
                                  f"became free within {pool_timeout}s") from None
            finally:
                if timer is not None:
                    timer.cancel()
                if not waiter.done():
                    waiter.cancel()

    async def _open(self) -> Any:
        self.opening += 1
        try:
            connection = await open_connection(self)
        except BaseException:
            self.opening -= 1
            self._wake(1)
            raise
        self.opening -= 1
        self.http2 = connection.is_http2
        if self.closed:  # the Client closed while this connection was being opened
            connection.close()
            raise ShutdownError("the Client was closed while the request was in flight")
        if connection.closed:
            self._wake(1)
            return await self.acquire(self.settings.timeout.pool)
        self.connections.append(connection)
        connection.free -= 1
        if self.sweeper is None:
            self.sweeper = self.loop.call_later(self.expiry, self._sweep)
        # HTTP/2: the new connection may serve every waiter; HTTP/1.1: waiters may now
        # open connections of their own.
        self._wake(len(self.waiters))
        return connection

    def _wake(self, count: int) -> None:
        waiters = self.waiters
        while count > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    # -- called by connections --------------------------------------------------------
    def slot_freed(self, connection: Any) -> None:
        """Request slots of `connection` became free."""
        if self.waiters:
            self._wake(connection.free)

    def discard(self, connection: Any) -> None:
        """`connection` closed: it serves no more requests."""
        try:
            self.connections.remove(connection)
        except ValueError:
            return
        self._wake(1)

    def _sweep(self) -> None:
        """Close connections idle longer than keepalive_expiry (one timer per pool)."""
        self.sweeper = None
        horizon = self.loop.time() - self.expiry
        for connection in list(self.connections):
            if connection.idle and connection.last_read < horizon:
                connection.close()
        if self.connections:
            self.sweeper = self.loop.call_later(self.expiry, self._sweep)

    def close(self) -> None:
        """Close every connection; exchanges in flight fail with ShutdownError (712)."""
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for connection in list(self.connections):
            connection.shut_down()
        self.connections.clear()
        self.closed = True
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(ShutdownError("the Client was closed while the request "
                                                   "waited for a connection"))
        self.waiters.clear()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())

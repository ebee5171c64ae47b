"""One request/response exchange as a connection sees it, and a streamed body's buffer.

`Exchange` is what a connection (HTTP/1.1 or HTTP/2) keeps per request in flight:
the Response it fills, the future the caller awaits, and the body received so
far.  `BodyStream` is the bounded buffer between a connection and a caller
reading a streamed body with `aiter_bytes()`: above its high mark it asks the
connection to stop reading (HTTP/1.1) or to stop granting window (HTTP/2), so a
100 MB body never sits in memory.  Neither touches bytes on the wire.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from qactuar.client.models import Response

STREAM_HIGH_WATER = 512 * 1024  # bytes buffered for a slow reader before reading stops
STREAM_LOW_WATER = 128 * 1024


class Exchange:
    """A request in flight on one connection."""

    __slots__ = (
        "activity",
        "blocks",
        "chunks",
        "connection",
        "future",
        "head_only",
        "read_timeout",
        "received",
        "response",
        "reused",
        "started",
        "stream",
        "stream_id",
        "until_close",
    )

    def __init__(self, response: Response, future: asyncio.Future[Any], head_only: bool,
                 read_timeout: float | None, streaming: bool) -> None:
        self.response = response
        self.future = future
        self.head_only = head_only  # HEAD: the response has no body whatever it says
        self.read_timeout = read_timeout
        self.chunks: list[bytes] = []
        self.stream: BodyStream | None = BodyStream() if streaming else None
        self.received = False  # any byte of the response arrived
        self.reused = False  # sent on a connection that had served a request before
        self.until_close = False  # HTTP/1.x body delimited by the connection's close
        self.stream_id = 0
        self.blocks = False  # nothing may be pipelined behind it (HTTP/1.1)
        self.activity = 0.0  # loop time of its last frame (HTTP/2: per-stream read timeout)
        # Set only by Client._send_now: the connection it went out on, perf_counter() then.
        self.connection: Any = None
        self.started = 0.0

    def deliver_head(self) -> None:
        """A streamed response's head is complete: the caller may start reading."""
        future = self.future
        if not future.done():
            self.response._stream = self.stream
            future.set_result(self.response)

    def finish(self) -> None:
        """The whole response arrived."""
        stream = self.stream
        if stream is not None:
            # An answer without a body (HEAD, 204, 304) ends with its head: the caller of
            # stream() gets it now, with nothing to read.
            self.deliver_head()
            stream.finish()
            return
        chunks = self.chunks
        response = self.response
        response._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        future = self.future
        if not future.done():
            future.set_result(response)

    def fail(self, error: BaseException) -> None:
        """The exchange cannot complete: the caller (or the stream's reader) gets `error`."""
        future = self.future
        if not future.done():
            future.set_exception(error)
        elif self.stream is not None:
            self.stream.fail(error)


class BodyStream:
    """Chunks of a streamed body between the connection filling it and the caller."""

    __slots__ = (
        "_chunks",
        "_done",
        "_error",
        "_waiter",
        "buffered",
        "on_abandon",
        "on_consumed",
        "on_full",
        "paused",
    )

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None
        self.buffered = 0
        self.paused = False
        # Set by the connection: stop reading, a chunk was consumed (n bytes), give up.
        self.on_full: Any = None
        self.on_consumed: Any = None
        self.on_abandon: Any = None

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self.buffered += len(chunk)
        self._wake()
        if self.buffered > STREAM_HIGH_WATER and not self.paused and self.on_full is not None:
            self.paused = True
            self.on_full()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._done = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def abandon(self) -> None:
        """The reader stopped early: the connection must not be reused for another request."""
        if not self._done:
            self._done = True
            self._chunks.clear()
            if self.on_abandon is not None:
                self.on_abandon()

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self._done:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        chunk = chunks.popleft()
        self.buffered -= len(chunk)
        if self.on_consumed is not None:
            self.on_consumed(self, len(chunk))
        return chunk

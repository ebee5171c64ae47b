"""HTTP/1.1 for the client: one connection, requests out, responses parsed by httptools.

`HTTP1Connection` is an asyncio Protocol on uvloop.  It writes a request head
(and a bytes body) in one `transport.write`, parses the answer with httptools'
callbacks straight into the Response, and hands the connection back to its pool
when the response ends and the server keeps it alive.  Keep-alive always;
pipelining when `Limits.pipelining` > 1 (responses come back in order, so the
in-flight exchanges are a queue).  Malformed answers fail the one exchange with
the right error and close the connection; the pool never sees it again.
It knows nothing of redirects, cookies or auth: that is `api.py`'s job.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterable
from typing import Any

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser

from qactuar.client.errors import (
    ClientError,
    ConnectionClosed,
    NoResponse,
    ProtocolError,
    ReadTimeout,
    ResponseHeaderError,
    ShutdownError,
    WriteTimeout,
)
from qactuar.client.exchange import STREAM_LOW_WATER, BodyStream, Exchange
from qactuar.client.models import Response
from qactuar.client.read_timer import ReadTimer

_NO_BODY_STATUSES = frozenset({204, 304})
HEAD_END = b"\r\n\r\n"
# Field names follow a line's CRLF and end at the colon, so these find exactly the fields.
_NOTED_FIELD = re.compile(rb"\n(?:set-cookie|content-encoding):", re.IGNORECASE).search
_FRAMING_FIELD = re.compile(rb"\n(?:content-length|transfer-encoding):", re.IGNORECASE).search


def _find_head(data: bytes, start: int, prefix: bytes) -> tuple[bytes, int]:
    """The head that ends in `data` (begun at `data[start]`, or in `prefix`, its part
    from earlier reads) and where what follows it begins in `data`.  The CR/LF that
    httptools skips before a response are left out."""
    region = prefix + data[start:] if prefix else data[start:]
    region = region.lstrip(b"\r\n")
    end = region.find(HEAD_END)
    # (What follows the head is the same distance from the end of `data` as of `region`.)
    return region[:end], len(data) - (len(region) - end - 4)


class _StopBody(Exception):
    """Raised from the parser's callback to stop parsing a HEAD response's body."""


class HTTP1Connection(ReadTimer, asyncio.Protocol):
    """One HTTP/1.1 connection of a pool."""

    http_version = "HTTP/1.1"
    records_head = False  # True: on_status and on_header record the head (pipelining)
    # Slots: a per-request hot path reads and writes these (fixed offsets, no dict).
    __slots__ = (
        "absolute_form",
        "blockers",
        "chunk",
        "closed",
        "completed",
        "current",
        "drain_waiter",
        "fields",
        "free",
        "head_prefix",
        "head_start",
        "headers_done",
        "held_slots",
        "is_http2",
        "keep_alive",
        "known_end",
        "known_head",
        "known_notes",
        "last_read",
        "loop",
        "max_header_size",
        "parser",
        "pending",
        "pipelining",
        "pool",
        "reading_paused",
        "reason",
        "sending_body",
        "served",
        "timer",
        "timer_due",
        "transport",
        "write_paused",
    )

    def __init__(self, pool: Any, pipelining: int = 1, max_header_size: int = 65536) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.is_http2 = False  # (a slot: read per request, faster than a class attribute)
        self.transport: Any = None
        self.parser = HttpResponseParser(self)
        self.pending: deque[Exchange] = deque()  # sent, answer not complete, in order
        self.current: Exchange | None = None  # the exchange whose answer is being parsed
        self.completed: Exchange | None = None  # complete, delivered once feed_data returns
        self.pipelining = pipelining
        self.free = 0  # requests this connection can take now (the pool reserves them)
        self.max_header_size = max_header_size
        # Where the head being parsed is: it began at chunk[head_start] (chunk: the data
        # being parsed), after `head_prefix` (its bytes from earlier reads, if any).
        self.chunk = b""
        self.head_start = 0
        self.head_prefix = b""
        self.headers_done = True
        # The last answer's head (and with its CRLF CRLF) and whether _note found anything
        # in it: the next head is often the same bytes.  (b"\0" begins no head.)
        self.known_head = b""
        self.known_end = b"\0"
        self.known_notes = False
        # PipelinedHTTP1Connection's record of a head (see there).
        self.reason = b""
        self.fields: list[bytes] = []
        self.keep_alive = True
        self.closed = False
        self.served = 0  # requests answered on this connection
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.sending_body = False
        self.absolute_form = False  # plain http through a proxy: the target is the whole URL
        self.held_slots = 0  # request slots held back while a blocking exchange is in flight
        self.blockers = 0  # exchanges in flight that nothing may be pipelined behind

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.free = self.pipelining
        self.last_read = self.loop.time()

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        self.chunk = data
        self.head_start = 0
        if self.current is None:
            pending = self.pending
            if pending:
                pending[0].received = True  # the first byte of its answer (see _begin)
            elif self.headers_done:
                # Bytes nobody asked for: this connection can no longer be trusted.
                self.close()
                return
        try:
            self.parser.feed_data(data)
        except _StopBody:
            self._finish_head_only()
        except HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _StopBody):
                self._finish_head_only()
            elif self.completed is not None and self.current is None:
                self._parse_error(cause)  # bytes after a complete answer
            elif isinstance(cause, ClientError):
                self._fail_all(cause)
            else:
                self._fail_all(ProtocolError(f"malformed response: {cause}"))
        except HttpParserError as error:
            self._parse_error(error)
        else:
            completed = self.completed
            if completed is not None:
                self.completed = None
                self._complete(completed)
            if not self.headers_done:
                # A head begun and not complete: its bytes so far wait for the rest.
                prefix = self.head_prefix = self.head_prefix + data[self.head_start:]
                if len(prefix) > self.max_header_size:
                    self._fail_all(ResponseHeaderError(
                        f"response head larger than {self.max_header_size} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.free = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        completed, self.completed = self.completed, None
        if completed is not None:
            self._complete(completed)
        current = self.current
        if current is not None and self.headers_done and current.until_close and exc is None:
            self.current = None
            if self.pending and self.pending[0] is current:
                self.pending.popleft()
            current.finish()
        if self.pending or self.current is not None:
            self._fail_all(self._closed_error(exc), closing=False)
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.pool.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------
    # No on_status or on_header: the head is taken whole from the bytes received (one
    # slice) and split into fields only if the caller asks (Response.raw_headers).  Four
    # header fields cost four C-to-Python calls and eight bytes objects before.
    def on_message_begin(self) -> None:
        # (Exchange.received was set by data_received.)
        if self.current is None:  # (else: the answer after an interim, 1xx, one)
            if not self.pending or self.completed is not None:
                # Without pipelining nothing may follow an answer in the same read.
                raise ProtocolError("the response went on past its end (Content-Length "
                                    "or chunks) or an answer came that nobody asked for")
            self.current = self.pending[0]
            self.headers_done = False

    def on_headers_complete(self) -> None:
        exchange = self.current
        assert exchange is not None  # (on_message_begin set it)
        if not (self.head_prefix or self.records_head):
            data = self.chunk
            start = self.head_start
            known = self.known_end
            end = start + len(known)
            if data[start:end] == known:
                # The head of the answer before, byte for byte, CRLF CRLF included (the
                # usual case: a Date field changes once a second): what was found in it
                # holds, and its size was checked.
                self.head_start = end
                self.headers_done = True
                response = exchange.response
                head = response._head = self.known_head
                parser = self.parser
                status = response.status_code = parser.get_status_code()
                if self.known_notes:
                    self._note(response, head)
                keep_alive = parser.should_keep_alive()
                if not keep_alive or exchange.head_only or exchange.stream is not None \
                        or status in _NO_BODY_STATUSES:
                    self._after_head(exchange, status, keep_alive)
                return
        self._new_head(exchange)

    def _new_head(self, exchange: Exchange) -> None:
        """on_headers_complete for a head unlike the last one (or in pieces, or recorded)."""
        prefix = self.head_prefix
        if prefix or self.records_head:
            self.head_prefix = b""
            if self.records_head:
                head = self._recorded_head()
            else:
                head, self.head_start = _find_head(self.chunk, self.head_start, prefix)
        else:
            data = self.chunk
            start = self.head_start
            end = data.find(HEAD_END, start)
            head = data[start:end]
            if head[:1] < b"\x0e":  # CR/LF before it (llhttp skips them), or none at all
                head, end = _find_head(data, start, b"")
                end -= 4
            self.head_start = end + 4  # an interim answer's successor begins there
        if len(head) > self.max_header_size:
            raise ResponseHeaderError(f"response head larger than {self.max_header_size} bytes")
        parser = self.parser
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ProtocolError("the server switched protocols, which was not asked for")
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self.headers_done = True
        response = exchange.response
        response._head = head
        response.status_code = status
        notes = self._note(response, head)
        if not self.records_head:
            self.known_end = head + HEAD_END
            self.known_head = head
            self.known_notes = notes
        self._after_head(exchange, status, parser.should_keep_alive())

    def _note(self, response: Response, head: bytes) -> bool:
        """Note what the response needs to know of its head without splitting it into
        fields: a Set-Cookie field (the jar looks then), a Content-Encoding field, a
        version other than 1.1.  Whether there was any."""
        noted = False
        if _NOTED_FIELD(head) is not None:
            lower = head.lower()
            if lower.find(b"\nset-cookie:") >= 0:
                response.has_cookies = noted = True
            if lower.find(b"\ncontent-encoding:") >= 0:
                response.coding = noted = True
        if head[7] != 49 or head[5] != 49:  # not HTTP/1.1 (llhttp checked the form)
            response.http_version = f"HTTP/{self.parser.get_http_version()}"
            noted = True
        return noted

    def _after_head(self, exchange: Exchange, status: int, keep_alive: bool) -> None:
        """What a final head means for the body and the connection."""
        if not keep_alive:
            self.keep_alive = False
        if exchange.head_only or status in _NO_BODY_STATUSES:
            if exchange.head_only:
                raise _StopBody  # httptools would wait for the body Content-Length announces
            return
        if not keep_alive and _FRAMING_FIELD(exchange.response._head) is None:
            # (A kept-alive answer is delimited: llhttp keeps none that ends at the close.)
            exchange.until_close = True
        if exchange.stream is not None:
            self._attach_stream(exchange.stream)
            exchange.deliver_head()

    def _recorded_head(self) -> bytes:
        """A head recorded by on_status and on_header (PipelinedHTTP1Connection)."""
        raise NotImplementedError

    def on_body(self, body: bytes) -> None:
        exchange = self.current
        stream = exchange.stream  # type: ignore[union-attr]
        if stream is None:
            exchange.chunks.append(body)  # type: ignore[union-attr]
        else:
            stream.feed(body)

    def on_message_complete(self) -> None:
        exchange = self.current
        if exchange is None or not self.headers_done:
            self.head_prefix = b""
            return  # the end of an interim (1xx) answer
        self.current = None
        self.pending.popleft()
        self.completed = exchange

    # -- sending ----------------------------------------------------------------------
    def send(self, exchange: Exchange, head: bytes, body: bytes | None) -> float:
        """Write a request whose body is bytes (or absent); the pool reserved a slot.
        Returns the loop time it was sent at."""
        now = self.loop.time()
        if self.pending:
            exchange.reused = True
        else:
            exchange.reused = self.served > 0
            self.last_read = now  # the silence the read timeout measures starts
        self.pending.append(exchange)
        if exchange.head_only and self.pipelining > 1:
            # Nothing is pipelined behind a HEAD: its answer's end is found by resetting
            # the parser, which would lose the bytes of answers behind it.
            self._block_pipelining(exchange)
        if body:
            if len(body) < 65536:
                self.transport.write(head + body)
            else:
                self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        read_timeout = exchange.read_timeout
        if read_timeout is not None and (
                self.timer is None or now + read_timeout < self.timer_due):
            self._arm_timer(read_timeout, now)  # (a timer due soon enough stays: no call)
        return now

    async def send_streamed(self, exchange: Exchange, head: bytes,
                            body: AsyncIterable[bytes], chunked: bool,
                            write_timeout: float | None) -> None:
        """Write a request whose body comes from an async iterable (chunked unless sized)."""
        exchange.reused = self.served > 0 or bool(self.pending)
        self.last_read = self.loop.time()
        self.pending.append(exchange)
        self.sending_body = True
        self._block_pipelining(exchange)  # nothing goes out behind a body being streamed
        transport = self.transport
        transport.write(head)
        try:
            async for chunk in body:
                if self.closed or (exchange.future.done() and exchange.stream is None):
                    break  # answered (or failed) before the body was all sent
                if not chunk:
                    continue
                if isinstance(chunk, str):
                    chunk = chunk.encode()
                if chunked:
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                else:
                    transport.write(chunk)
                if self.write_paused:
                    await self._drain(write_timeout)
            else:
                if chunked and not self.closed:
                    transport.write(b"0\r\n\r\n")
                self.sending_body = False
                self._arm_timer(exchange.read_timeout, self.loop.time())
                return
        except BaseException:
            self.keep_alive = False
            self.sending_body = False
            raise
        # The server answered before taking the whole body: it must not read our rest
        # as a request, so this connection ends with this exchange.
        self.keep_alive = False
        self.sending_body = False
        self._arm_timer(exchange.read_timeout, self.loop.time())

    async def _drain(self, write_timeout: float | None) -> None:
        waiter = self.drain_waiter = self.loop.create_future()
        try:
            if write_timeout is None:
                await waiter
            else:
                await asyncio.wait_for(waiter, write_timeout)
        except TimeoutError:
            error = WriteTimeout(f"the server took no data for {write_timeout}s")
            self._fail_all(error)
            raise error from None
        if self.closed:
            raise ConnectionClosed("the connection closed while the request body was sent")

    # -- timeouts ---------------------------------------------------------------------
    def _check_read(self) -> None:
        self.timer = None
        if self.closed or not self.pending:
            return
        limit = self.pending[0].read_timeout
        if limit is None:
            return
        now = self.loop.time()
        if self.reading_paused or self.sending_body:
            idle_until = now + limit  # the reader or the body is behind, not the server
        else:
            idle_until = self.last_read + limit
        if now >= idle_until:
            self._fail_all(ReadTimeout(f"no data from the server for {limit}s"))
            return
        self.timer_due = idle_until
        self.timer = self.loop.call_at(idle_until, self._check_read)

    # -- completion and failure -------------------------------------------------------
    def _complete(self, exchange: Exchange) -> None:
        self.served += 1
        future = exchange.future
        if exchange.stream is None and not future.done():
            # Exchange.finish's common case, inlined (one call less per request).
            chunks = exchange.chunks
            response = exchange.response
            response._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            future.set_result(response)
        else:
            exchange.finish()
        if self.closed:
            return
        if not self.keep_alive:
            self.close()
            return
        if exchange.blocks:
            self.blockers -= 1
        if self.blockers or self.sending_body:
            self.held_slots += 1  # released once nothing blocks pipelining
            return
        self.free += 1 + self.held_slots
        self.held_slots = 0
        if self.pool.waiters:
            self.pool.slot_freed(self)

    def _block_pipelining(self, exchange: Exchange) -> None:
        exchange.blocks = True
        self.blockers += 1
        self.held_slots += self.free
        self.free = 0

    def _finish_head_only(self) -> None:
        exchange = self.current
        if exchange is None:
            return
        self.current = None
        self.pending.popleft()
        self.parser = HttpResponseParser(self)  # the old one still expects a body
        self.headers_done = True
        self._complete(exchange)

    def _parse_error(self, error: BaseException | None) -> None:
        if self.completed is not None and self.current is None:
            exchange, self.completed = self.completed, None
            exchange.fail(ProtocolError("the response went on past its end "
                                        f"(Content-Length or the last chunk): {error}"))
            self.served += 1
            self.close()
            return
        if not self.headers_done or self.current is None:
            self._fail_all(ResponseHeaderError(f"malformed response head: {error}"))
        else:
            self._fail_all(ProtocolError(f"malformed response body: {error}"))

    def _closed_error(self, exc: Exception | None) -> ClientError:
        current = self.current or (self.pending[0] if self.pending else None)
        how = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        if current is not None and not current.received:
            error: ClientError = NoResponse(f"the server {how} the connection without "
                                            "answering")
            error.reused = current.reused
            return error
        if self.current is None or not self.headers_done:
            # (current is None here when the bytes of its head so far made no callback.)
            return ConnectionClosed(f"the server {how} the connection in the response head")
        return ConnectionClosed(f"the server {how} the connection before the response body "
                                "ended")

    def _fail_all(self, error: ClientError, closing: bool = True) -> None:
        """Fail every exchange in flight (the first with `error`) and close."""
        self.free = 0
        pending, self.pending = self.pending, deque()
        if self.current is not None and (not pending or pending[0] is not self.current):
            pending.appendleft(self.current)
        self.current = None
        for index, exchange in enumerate(pending):
            if index == 0:
                exchange.fail(error)
            else:
                retry = NoResponse("an earlier pipelined request on the connection failed")
                retry.reused = True
                exchange.fail(retry)
        if closing:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.free = 0
            self.transport.close()
            self.pool.discard(self)

    @property
    def idle(self) -> bool:
        """No request in flight (`last_read` then tells since when)."""
        return not self.pending and self.current is None and not self.sending_body

    def shut_down(self) -> None:
        """The Client is closing: fail what is in flight (712) and close."""
        if self.pending or self.current is not None:
            self._fail_all(ShutdownError("the Client was closed while the request was in "
                                         "flight"), closing=False)
        self.close()

    def forget(self, exchange: Exchange) -> None:
        """The caller gave up on `exchange` (cancelled): its answer can never be read."""
        if exchange in self.pending or exchange is self.current:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once (a cancelled or abandoned exchange)."""
        if not self.closed:
            self.closed = True
            self.free = 0
            self.transport.abort()
            self.pool.discard(self)

    # -- streamed responses -----------------------------------------------------------
    def _attach_stream(self, stream: BodyStream) -> None:
        stream.on_full = self._pause_reading
        stream.on_consumed = self._consumed
        stream.on_abandon = self.abort

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _consumed(self, stream: BodyStream, size: int) -> None:
        if stream.paused and stream.buffered < STREAM_LOW_WATER:
            stream.paused = False
            if self.reading_paused and not self.closed:
                self.reading_paused = False
                self.last_read = self.loop.time()
                self.transport.resume_reading()


class PipelinedHTTP1Connection(HTTP1Connection):
    """An HTTP/1.1 connection that pipelines requests (`Limits.pipelining` > 1).

    Several answers can then arrive in one read, and where one that follows a chunked
    body begins in it is not known (httptools does not tell): so the head is recorded
    from httptools' on_status and on_header callbacks instead of sliced from the bytes.
    """

    __slots__ = ()
    records_head = True

    def on_message_begin(self) -> None:
        if self.current is not None:
            return  # the answer after an interim (1xx) one
        if not self.pending:
            raise ProtocolError("the response went on past its end (Content-Length or "
                                "chunks) or an answer came that nobody asked for")
        completed = self.completed
        if completed is not None:
            # A pipelined answer follows the one just completed: deliver that one now.
            self.completed = None
            self._complete(completed)
        self.current = current = self.pending[0]
        current.received = True
        self.headers_done = False

    def on_status(self, status: bytes) -> None:
        self.reason += status  # (it may arrive in pieces)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.headers_done:  # (not a trailer field)
            self.fields += (b"\r\n", name, b": ", value)

    def _recorded_head(self) -> bytes:
        status_line = b"HTTP/%s %d %s" % (self.parser.get_http_version().encode(),
                                           self.parser.get_status_code(), self.reason)
        head = status_line + b"".join(self.fields)
        self.reason = b""
        self.fields = []
        return head


def request_head(method: str, target: str, authority: str,
                 fields: list[tuple[bytes, bytes]]) -> bytes:
    """The bytes of an HTTP/1.1 request head."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("latin-1")]
    for name, value in fields:
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


__all__ = ["HTTP1Connection", "PipelinedHTTP1Connection", "Response", "request_head"]

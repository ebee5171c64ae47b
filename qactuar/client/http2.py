"""HTTP/2 for the client (RFC 9113): one connection, many streams, frames read and written here.

A client's side of HTTP/2 is small: it opens streams with HEADERS (and DATA),
reads HEADERS/DATA back, and obeys SETTINGS, WINDOW_UPDATE, PING, RST_STREAM
and GOAWAY.  Doing that directly (`struct` for frame heads, the server's HPACK
codec for header blocks) costs a fraction of `h2`'s event objects per frame,
which is what lets one core drive 10,000+ requests a second.  Header blocks we
send use HPACK's static table and literals without indexing (memoised per
field, Huffman-coded once per process), so our encoder has no state to keep in
step; the decoder is `hpack`'s, which keeps the server's dynamic table.

Flow control: we grant 1 MiB per stream and 16 MiB per connection, credited
back as bodies are received (or, for streamed bodies, as the caller reads
them, so a slow reader holds at most a window's worth).  We send request bodies
within the peer's windows, waiting for WINDOW_UPDATE when they run out.

Streams beyond the peer's MAX_CONCURRENT_STREAMS are never opened: the pool
sees `free` at 0 and opens another connection.  Failures reach only the streams
they concern: RST_STREAM fails its stream (721), GOAWAY the streams the server
will not process (720, retried on a new connection), a connection error every
stream on it.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import AsyncIterable
from typing import Any

from qactuar.client.errors import (
    ClientError,
    ConnectionClosed,
    HTTP2ConnectionError,
    ProtocolError,
    ReadTimeout,
    ResponseHeaderError,
    ShutdownError,
    StreamReset,
    WriteTimeout,
)
from qactuar.client.exchange import Exchange
from qactuar.client.read_timer import ReadTimer
from qactuar.protocols.hpack_codec import BlockCachingDecoder, field_forms

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEAD = struct.Struct(">BHBBL")
_SETTING = struct.Struct(">HL")
_UINT32 = struct.Struct(">L")
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
MAX_FRAME_SIZE = 16384  # what we accept (the protocol's default; we do not raise it)
STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 16 << 20
MAX_STREAM_ID = (1 << 31) - 1
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
               0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED",
               0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
               0x9: "COMPRESSION_ERROR", 0xA: "CONNECT_ERROR", 0xB: "ENHANCE_YOUR_CALM",
               0xC: "INADEQUATE_SECURITY", 0xD: "HTTP_1_1_REQUIRED"}
# Fields HTTP/2 forbids (RFC 9113 8.2.2); Host becomes :authority.
_CONNECTION_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                                b"transfer-encoding", b"upgrade", b"host"})
_SCHEMES = {"https": field_forms((b":scheme", b"https"))[0],
            "http": field_forms((b":scheme", b"http"))[0]}


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return FRAME_HEAD.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id) + payload


class _Outgoing:
    """A request body still to be sent on one stream, within the flow-control windows."""

    __slots__ = ("chunks", "end", "progress", "waiter", "window", "write_timeout")

    def __init__(self, window: int, now: float, write_timeout: float | None = None) -> None:
        self.chunks: deque[memoryview] = deque()
        self.end = False  # END_STREAM once the chunks are sent
        self.window = window
        self.waiter: asyncio.Future[None] | None = None
        self.progress = now  # loop time data last went out (or the body began)
        # For a body in memory: how long it may wait for window (a streamed body's
        # sender waits with its own timeout).
        self.write_timeout = write_timeout


class HTTP2Connection(ReadTimer, asyncio.Protocol):
    """One HTTP/2 connection of a pool."""

    is_http2 = True
    absolute_form = False
    http_version = "HTTP/2"
    # Slots: the per-request path reads and writes these (fixed offsets, no dict).
    __slots__ = ("buffer", "closed", "connection_unacked", "continuation", "decoder",
                 "drain_waiters", "first_block", "free", "going_away", "heads", "last_read",
                 "loop", "next_stream_id", "our_stream_limit", "outgoing", "peer_initial_window",
                 "peer_max_frame", "pool", "ready_future", "send_window", "served",
                 "settings_seen", "stream_limit", "stream_unacked", "streams", "timer",
                 "timer_due", "transport", "write_paused")

    def __init__(self, pool: Any, limits: Any) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: Any = None
        self.buffer = b""
        self.streams: dict[int, Exchange] = {}
        self.outgoing: dict[int, _Outgoing] = {}
        self.next_stream_id = 1
        self.our_stream_limit = limits.max_streams_per_connection
        self.stream_limit = 0  # known from the peer's first SETTINGS
        self.free = 0
        self.send_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.connection_unacked = 0
        self.stream_unacked: dict[int, int] = {}
        self.decoder = BlockCachingDecoder()
        # What header blocks read before gave (see _on_headers), with the decoder's
        # generation then: valid while the HPACK table is unchanged.
        self.heads: dict[bytes, tuple[Any, ...]] = {}
        self.decoder.max_allowed_table_size = 4096
        self.continuation: tuple[int, int, bytearray] | None = None  # stream, flags, block
        self.first_block = True
        self.settings_seen = False
        self.ready_future: asyncio.Future[None] = self.loop.create_future()
        self.closed = False
        self.going_away = False
        self.served = 0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.last_read = self.loop.time()
        settings = _SETTING.pack(0x2, 0) + _SETTING.pack(0x4, STREAM_WINDOW)
        transport.write(PREFACE + _frame(SETTINGS, 0, 0, settings)
                        + _frame(WINDOW_UPDATE, 0, 0, _UINT32.pack(CONNECTION_WINDOW - 65535)))

    async def ready(self) -> None:
        """Wait for the server's SETTINGS (its stream limit) before the first request."""
        await self.ready_future

    def data_received(self, data: bytes) -> None:
        self.last_read = now = self.loop.time()
        buffer = self.buffer + data if self.buffer else data
        size = len(buffer)
        position = 0
        unpack = FRAME_HEAD.unpack_from
        try:
            while size - position >= 9:
                high, low, kind, flags, stream_id = unpack(buffer, position)
                length = (high << 16) | low
                if length > MAX_FRAME_SIZE:
                    raise _ConnectionFault(0x6, f"a frame of {length} bytes (limit "
                                                f"{MAX_FRAME_SIZE})")
                end = position + 9 + length
                if end > size:
                    break
                payload = buffer[position + 9:end]
                position = end
                stream_id &= MAX_STREAM_ID
                if not self.settings_seen and kind != SETTINGS:
                    raise _ConnectionFault(0x1, "the server did not start with SETTINGS")
                if self.continuation is not None and kind != CONTINUATION:
                    raise _ConnectionFault(0x1, "a frame inside a header block")
                if kind == DATA:
                    self._on_data(stream_id, flags, payload, now)
                elif kind in (HEADERS, CONTINUATION):
                    self._on_headers(kind, stream_id, flags, payload, now)
                elif kind == SETTINGS:
                    self._on_settings(flags, payload)
                elif kind == WINDOW_UPDATE:
                    self._on_window_update(stream_id, payload)
                elif kind == PING:
                    if not flags & ACK:
                        self.transport.write(_frame(PING, ACK, 0, payload))
                elif kind == RST_STREAM:
                    self._on_reset(stream_id, payload)
                elif kind == GOAWAY:
                    self._on_goaway(payload)
                elif kind == PUSH_PROMISE:
                    raise _ConnectionFault(0x1, "PUSH_PROMISE although push is disabled")
        except _ConnectionFault as fault:
            self._fault(fault.code, fault.reason)
            return
        except ClientError as error:
            self._fail_all(error)
            self.close()
            return
        self.buffer = buffer[position:] if position < size else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.free = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        how = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        if not self.ready_future.done():
            self.ready_future.set_exception(
                HTTP2ConnectionError(f"the server {how} the connection before its SETTINGS"))
        self._fail_all(None, f"the server {how} the HTTP/2 connection")
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.pool.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self.drain_waiters = self.drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- frames in --------------------------------------------------------------------
    def _on_data(self, stream_id: int, flags: int, payload: bytes, now: float) -> None:
        if stream_id == 0:
            raise _ConnectionFault(0x1, "DATA on stream 0")
        flow = len(payload)
        if flags & PADDED:
            payload = _unpad(payload)
        unacked = self.connection_unacked + flow
        if unacked > CONNECTION_WINDOW // 2:
            self.transport.write(_frame(WINDOW_UPDATE, 0, 0, _UINT32.pack(unacked)))
            unacked = 0
        self.connection_unacked = unacked
        exchange = self.streams.get(stream_id)
        if exchange is None:
            return  # a stream we reset or finished: its data is dropped
        exchange.received = True
        exchange.activity = now
        stream = exchange.stream
        if stream is None:
            if payload:
                exchange.chunks.append(payload)
            if not flags & END_STREAM:  # (the stream's window matters no more once it ends)
                pending = self.stream_unacked.get(stream_id, 0) + flow
                if pending > STREAM_WINDOW // 2:
                    self.transport.write(_frame(WINDOW_UPDATE, 0, stream_id,
                                                _UINT32.pack(pending)))
                    pending = 0
                self.stream_unacked[stream_id] = pending
        else:
            if flow > len(payload):  # padding is credited now; data when it is read
                self._credit_stream(stream_id, flow - len(payload))
            if payload:
                stream.feed(payload)
        if flags & END_STREAM:
            self._complete(stream_id, exchange)

    def _on_headers(self, kind: int, stream_id: int, flags: int, payload: bytes,
                    now: float) -> None:
        if kind == CONTINUATION:
            pending = self.continuation
            if pending is None or pending[0] != stream_id:
                raise _ConnectionFault(0x1, "CONTINUATION without its HEADERS")
            pending[2].extend(payload)
            if not flags & END_HEADERS:
                return
            self.continuation = None
            stream_id, flags, block = pending[0], pending[1], bytes(pending[2])
        else:
            if self.continuation is not None:
                raise _ConnectionFault(0x1, "HEADERS inside another header block")
            if stream_id == 0:
                raise _ConnectionFault(0x1, "HEADERS on stream 0")
            if flags & PADDED:
                payload = _unpad(payload)
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            if not flags & END_HEADERS:
                self.continuation = (stream_id, flags, bytearray(payload))
                return
            block = payload
        decoder = self.decoder
        known = self.heads.get(block)
        if known is not None and known[0] == decoder._generation:
            # This block was read before and the HPACK table has not changed since:
            # decoding it again would give the same fields and change nothing.
            status, headers, coding, has_cookies = known[1], list(known[2]), known[3], known[4]
        else:
            generation = decoder._generation
            try:
                fields = decoder.decode(block, raw=True)
            except Exception as error:
                raise _ConnectionFault(0x9, f"undecodable header block: {error}") from None
            status, headers, coding, has_cookies = _read_fields(fields)
            if decoder._generation == generation and len(block) <= 512:
                # (Only a block that left the table as it was can be read again so.)
                heads = self.heads
                if len(heads) >= 16:
                    heads.clear()
                heads[bytes(block)] = (generation, status, tuple(headers), coding, has_cookies)
        exchange = self.streams.get(stream_id)
        if exchange is None:
            return  # decoded all the same: the HPACK table is shared by every stream
        exchange.received = True
        exchange.activity = now
        response = exchange.response
        if response.status_code:  # trailers: kept as fields of the response
            response.raw_headers.extend(headers)
        else:
            if not 100 <= status <= 999:
                self._reset(stream_id, 0x1)
                self._finish_stream(stream_id)
                exchange.fail(ResponseHeaderError(f"stream {stream_id}: no valid :status"))
                return
            if status < 200:
                return  # an interim answer
            response.status_code = status
            if coding is not None:
                response.coding = coding
            if has_cookies:
                response.has_cookies = True
            response._raw = headers  # (the reason phrase is looked up if asked for)
            if exchange.stream is not None:
                exchange.stream.on_consumed = (
                    lambda _stream, size, sid=stream_id: self._credit_stream(sid, size))
                exchange.stream.on_abandon = lambda: self.forget(exchange)
                exchange.deliver_head()
        if flags & END_STREAM:
            self._complete(stream_id, exchange)

    def _on_settings(self, flags: int, payload: bytes) -> None:
        if flags & ACK:
            return
        if len(payload) % 6:
            raise _ConnectionFault(0x6, "a SETTINGS frame of a bad size")
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == 0x3:
                self._set_stream_limit(value)
            elif key == 0x4:
                if value > MAX_STREAM_ID:
                    raise _ConnectionFault(0x3, "INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for outgoing in self.outgoing.values():
                    outgoing.window += delta
            elif key == 0x5:
                if not 16384 <= value <= 16777215:
                    raise _ConnectionFault(0x1, "MAX_FRAME_SIZE out of range")
                self.peer_max_frame = value
        self.transport.write(_frame(SETTINGS, ACK, 0))
        if not self.settings_seen:
            self.settings_seen = True
            if not self.stream_limit:
                self._set_stream_limit(100 if self.our_stream_limit is None else
                                       self.our_stream_limit, unannounced=True)
            if not self.ready_future.done():
                self.ready_future.set_result(None)
        if self.outgoing:
            self._flush()

    def _set_stream_limit(self, peer_limit: int, unannounced: bool = False) -> None:
        # Unannounced, the peer allows any number; we still open at most 100 at once.
        limit = peer_limit
        if self.our_stream_limit is not None:
            limit = min(limit, self.our_stream_limit)
        if not self.going_away and not self.closed:
            self.free += limit - self.stream_limit
        self.stream_limit = limit
        if self.free > 0 and self.settings_seen:
            self.pool.slot_freed(self)

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ConnectionFault(0x6, "a WINDOW_UPDATE frame of a bad size")
        increment = _UINT32.unpack(payload)[0] & MAX_STREAM_ID
        if stream_id == 0:
            self.send_window += increment
        else:
            outgoing = self.outgoing.get(stream_id)
            if outgoing is None:
                return
            outgoing.window += increment
        if self.outgoing:
            self._flush()

    def _on_reset(self, stream_id: int, payload: bytes) -> None:
        exchange = self.streams.get(stream_id)
        if exchange is None:
            return
        code = _UINT32.unpack(payload)[0] if len(payload) == 4 else 0x2
        self._finish_stream(stream_id)
        error = StreamReset(f"the server reset stream {stream_id} "
                            f"({ERROR_NAMES.get(code, hex(code))})")
        if code == 0x7:  # REFUSED_STREAM: not processed at all, safe to send again
            error.reused = True
        exchange.fail(error)

    def _on_goaway(self, payload: bytes) -> None:
        if len(payload) < 8:
            raise _ConnectionFault(0x6, "a GOAWAY frame of a bad size")
        last_stream, code = struct.unpack_from(">LL", payload)
        last_stream &= MAX_STREAM_ID
        self.going_away = True
        self.free = 0
        for stream_id in [s for s in self.streams if s > last_stream]:
            exchange = self.streams[stream_id]
            self._finish_stream(stream_id)
            error = HTTP2ConnectionError(f"the server is closing the connection "
                                         f"({ERROR_NAMES.get(code, hex(code))}) and will not "
                                         f"process stream {stream_id}")
            error.reused = True
            exchange.fail(error)
        if not self.streams:
            self.close()
        else:
            self.pool.discard(self)

    # -- frames out -------------------------------------------------------------------
    def send(self, exchange: Exchange, request: Any, write_timeout: float | None = None) -> float:
        """Open a stream for a request whose body is bytes or absent; the pool reserved it.
        Returns the loop time it was sent at."""
        stream_id = self._open_stream(exchange)
        body = request.content
        block = request.block  # (set by _header_block for a request of default fields)
        if block is None or self.first_block:
            block = self._header_block(request)
        if not body:
            length = len(block)
            if length <= self.peer_max_frame:  # (_write_headers' usual case, inlined)
                self.transport.write(FRAME_HEAD.pack(0, length, HEADERS,
                                                     END_STREAM | END_HEADERS, stream_id)
                                     + block)
            else:
                self._write_headers(stream_id, block, True)
        else:
            self._write_headers(stream_id, block, False)
            outgoing = self.outgoing[stream_id] = _Outgoing(
                self.peer_initial_window, exchange.activity, write_timeout)
            outgoing.chunks.append(memoryview(body))
            outgoing.end = True
            self._flush()
            if stream_id in self.outgoing and write_timeout is not None:
                self._arm_timer(write_timeout, exchange.activity)  # waiting for window
        read_timeout = exchange.read_timeout
        if read_timeout is not None and (
                self.timer is None or exchange.activity + read_timeout < self.timer_due):
            self._arm_timer(read_timeout, exchange.activity)  # (else: no call)
        return exchange.activity

    async def send_streamed(self, exchange: Exchange, request: Any,
                            write_timeout: float | None) -> None:
        """Open a stream whose body comes from an async iterable."""
        stream_id = self._open_stream(exchange)
        self._write_headers(stream_id, self._header_block(request), False)
        outgoing = self.outgoing[stream_id] = _Outgoing(self.peer_initial_window,
                                                        self.loop.time())
        body: AsyncIterable[bytes] = request.body_stream
        async for chunk in body:
            if self.closed or stream_id not in self.streams:
                return
            if not chunk:
                continue
            if isinstance(chunk, str):
                chunk = chunk.encode()
            outgoing.chunks.append(memoryview(chunk))
            self._flush()
            if outgoing.chunks or self.write_paused:
                await self._wait_sent(outgoing, write_timeout)
        if self.closed or stream_id not in self.streams:
            return
        outgoing.end = True
        self._flush()
        self._arm_timer(exchange.read_timeout, self.loop.time())

    async def _wait_sent(self, outgoing: _Outgoing, write_timeout: float | None) -> None:
        waiter = self.loop.create_future()
        if outgoing.chunks:
            outgoing.waiter = waiter
        else:
            self.drain_waiters.append(waiter)
        try:
            async with asyncio.timeout(write_timeout):
                await waiter
        except TimeoutError:
            raise WriteTimeout(f"the server took no request body for {write_timeout}s "
                               "(flow control or a full socket)") from None
        if self.closed:
            raise ConnectionClosed("the connection closed while the request body was sent")

    def _open_stream(self, exchange: Exchange) -> int:
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        if self.next_stream_id > MAX_STREAM_ID:
            self.going_away = True  # no ids left: serve what is open, then close
            self.free = 0
        exchange.stream_id = stream_id
        if self.streams:
            exchange.reused = True
            exchange.activity = self.loop.time()
        else:
            exchange.reused = self.served > 0
            # The silence the read timeout measures starts now.
            exchange.activity = self.last_read = self.loop.time()
        self.streams[stream_id] = exchange
        return stream_id

    def _header_block(self, request: Any) -> bytes:
        key = request.cache_key
        if key is None:
            block = _encode_fields(request)
        else:
            blocks = self.pool.settings.blocks
            block = blocks.get(key)
            if block is None:
                block = _encode_fields(request)
                if len(blocks) >= 1024:
                    blocks.clear()
                blocks[key] = block
            request.block = block
        if self.first_block:
            self.first_block = False
            return b"\x20" + block  # our dynamic table: size 0, never used (RFC 7541 6.3)
        return block

    def _write_headers(self, stream_id: int, block: bytes, end_stream: bool) -> None:
        flags = END_STREAM if end_stream else 0
        limit = self.peer_max_frame
        if len(block) <= limit:
            self.transport.write(_frame(HEADERS, flags | END_HEADERS, stream_id, block))
            return
        frames = [_frame(HEADERS, flags, stream_id, block[:limit])]
        for offset in range(limit, len(block), limit):
            last = offset + limit >= len(block)
            frames.append(_frame(CONTINUATION, END_HEADERS if last else 0, stream_id,
                                 block[offset:offset + limit]))
        self.transport.write(b"".join(frames))

    def _flush(self) -> None:
        """Send what request bodies the windows allow."""
        frames = []
        now = 0.0
        for stream_id, outgoing in list(self.outgoing.items()):
            chunks = outgoing.chunks
            ended = False
            if chunks and self.send_window > 0 and outgoing.window > 0:
                outgoing.progress = now = now or self.loop.time()
            while chunks and self.send_window > 0 and outgoing.window > 0:
                chunk = chunks[0]
                size = min(len(chunk), self.send_window, outgoing.window, self.peer_max_frame)
                if size == len(chunk):
                    chunks.popleft()
                else:
                    chunks[0] = chunk[size:]
                self.send_window -= size
                outgoing.window -= size
                ended = outgoing.end and not chunks
                frames.append(_frame(DATA, END_STREAM if ended else 0, stream_id,
                                     bytes(chunk[:size])))
            if not chunks:
                if outgoing.end:
                    if not ended:
                        frames.append(_frame(DATA, END_STREAM, stream_id))
                    del self.outgoing[stream_id]
                waiter = outgoing.waiter
                if waiter is not None:
                    outgoing.waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
        if frames:
            self.transport.write(b"".join(frames))

    def _send_goaway(self, code: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(GOAWAY, 0, 0, struct.pack(">LL", 0, code)))

    def _reset(self, stream_id: int, code: int) -> None:
        if not self.closed:
            self.transport.write(_frame(RST_STREAM, 0, stream_id, _UINT32.pack(code)))

    # -- stream ends ------------------------------------------------------------------
    def _finish_stream(self, stream_id: int) -> None:
        if self.streams.pop(stream_id, None) is None:
            return
        if self.stream_unacked:
            self.stream_unacked.pop(stream_id, None)
        if self.outgoing:
            outgoing = self.outgoing.pop(stream_id, None)
            if outgoing is not None and outgoing.waiter is not None \
                    and not outgoing.waiter.done():
                outgoing.waiter.set_result(None)
        self.served += 1
        if self.closed:
            return
        if self.going_away:
            if not self.streams:
                self.close()
            return
        self.free += 1
        if self.pool.waiters:
            self.pool.slot_freed(self)

    def _complete(self, stream_id: int, exchange: Exchange) -> None:
        if self.outgoing and stream_id in self.outgoing:
            # The answer came before our body was all sent: stop sending it.
            self._reset(stream_id, 0x0)
        self._finish_stream(stream_id)
        response = exchange.response
        if response.status_code == 0:
            exchange.fail(ProtocolError(f"stream {stream_id} ended without a response head"))
        elif exchange.stream is None and not exchange.future.done():
            # Exchange.finish's usual case, inlined (one call less per request).
            chunks = exchange.chunks
            response._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            exchange.future.set_result(response)
        else:
            exchange.finish()

    def _credit_stream(self, stream_id: int, size: int) -> None:
        pending = self.stream_unacked.get(stream_id, 0) + size
        if pending >= STREAM_WINDOW // 4:
            if stream_id in self.streams and not self.closed:
                self.transport.write(_frame(WINDOW_UPDATE, 0, stream_id, _UINT32.pack(pending)))
            pending = 0
        self.stream_unacked[stream_id] = pending

    def forget(self, exchange: Exchange) -> None:
        """The caller gave up on `exchange`: reset its stream, keep the connection."""
        stream_id = exchange.stream_id
        if self.streams.get(stream_id) is exchange:
            self._reset(stream_id, 0x8)
            self._finish_stream(stream_id)

    # -- failure ----------------------------------------------------------------------
    def _fault(self, code: int, reason: str) -> None:
        """A connection error (RFC 9113 5.4.1): GOAWAY, fail every stream, close."""
        if not self.ready_future.done():
            self.ready_future.set_exception(ProtocolError(reason))
        self._send_goaway(code)
        error_class = ProtocolError if code in (0x1, 0x6, 0x9) else HTTP2ConnectionError
        self._fail_all(error_class(f"HTTP/2 connection error ({ERROR_NAMES.get(code)}): "
                                   f"{reason}"))
        self.close()

    def _fail_all(self, error: ClientError | None, reason: str = "") -> None:
        self.free = 0
        streams, self.streams = self.streams, {}
        self.outgoing.clear()
        for exchange in streams.values():
            failure = error
            if failure is None:
                if exchange.received:
                    failure = ConnectionClosed(f"{reason} before the response ended")
                else:
                    failure = HTTP2ConnectionError(f"{reason} before answering")
                    failure.reused = exchange.reused
            exchange.fail(failure)

    def _check_read(self) -> None:
        """Fail the streams silent for longer than their read timeout (each reset alone),
        then wait for the next one that could be."""
        self.timer = None
        if self.closed or not self.streams:
            return
        now = self.loop.time()
        next_due = None
        for stream_id, exchange in list(self.streams.items()):
            limit = exchange.read_timeout
            if limit is None:
                limit = float("inf")
            stream = exchange.stream
            outgoing = self.outgoing.get(stream_id)
            if outgoing is not None and outgoing.write_timeout is not None:
                # A body in memory waiting for flow-control window: the write timeout.
                due = outgoing.progress + outgoing.write_timeout
                if now >= due:
                    self._reset(stream_id, 0x8)
                    self._finish_stream(stream_id)
                    exchange.fail(WriteTimeout(
                        f"the server granted no flow-control window for "
                        f"{outgoing.write_timeout}s (stream {stream_id})"))
                    continue
                if next_due is None or due < next_due:
                    next_due = due
            if (stream is not None and stream.buffered) or outgoing is not None:
                exchange.activity = now  # our reader or our body is behind, not the server
            due = exchange.activity + limit
            if now >= due:
                self._reset(stream_id, 0x8)
                self._finish_stream(stream_id)
                exchange.fail(ReadTimeout(f"no data from the server for {limit}s "
                                          f"(stream {stream_id})"))
            elif due != float("inf") and (next_due is None or due < next_due):
                next_due = due
        if next_due is not None and not self.closed:
            self.timer_due = next_due
            self.timer = self.loop.call_at(next_due, self._check_read)

    @property
    def idle(self) -> bool:
        """No stream open (`last_read` then tells since when)."""
        return not self.streams

    def shut_down(self) -> None:
        """The Client is closing: fail what is in flight (712) and close."""
        self._fail_all(ShutdownError("the Client was closed while the request was in flight"))
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.free = 0
            self._send_goaway(0x0)
            self.transport.close()
            self.pool.discard(self)

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.free = 0
            if self.transport is not None:
                self.transport.abort()
            self.pool.discard(self)


def _read_fields(fields: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[bytes, bytes]],
                                                          bytes | None, bool]:
    """A decoded header block's :status (0 if absent, -1 if not a number), its regular
    fields, its Content-Encoding value and whether it sets a cookie."""
    status = 0
    headers = []
    coding = None
    has_cookies = False
    for field in fields:
        name = field[0]
        if name == b":status":
            try:
                status = int(field[1])
            except ValueError:
                status = -1
        elif name[:1] != b":":
            headers.append(field)
            if name == b"content-encoding":
                coding = field[1]
            elif name == b"set-cookie":
                has_cookies = True
    return status, headers, coding, has_cookies


def _encode_fields(request: Any) -> bytes:
    """The HPACK block of a request's pseudo-header and header fields."""
    parsed = request.parsed
    parts = [field_forms((b":method", request.method.encode()))[0],
              _SCHEMES["https" if parsed.origin.is_tls else "http"],
              field_forms((b":authority", parsed.authority.encode()))[0],
              field_forms((b":path", parsed.target.encode()))[0]]
    for name, value in request.fields:
        name = name.lower()
        if name in _CONNECTION_FIELDS or (name == b"te" and value != b"trailers"):
            continue
        parts.append(field_forms((name, value))[0])
    return b"".join(parts)


class _ConnectionFault(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _unpad(payload: bytes) -> bytes:
    if not payload:
        raise _ConnectionFault(0x1, "a padded frame without its pad length")
    pad = payload[0]
    if pad >= len(payload):
        raise _ConnectionFault(0x1, "padding longer than the frame")
    return payload[1:len(payload) - pad]

"""The WebSocket client: one RFC 6455 connection over its own asyncio transport.

Owns the client side of a WebSocket: opening the TCP (and TLS) connection, the
HTTP/1.1 upgrade, messages in and out (text, binary, fragmented), ping/pong,
the close handshake and its codes, permessage-deflate, and back-pressure both
ways.  Framing, masking, control-frame rules, size limits and compression come
from the sans-I/O core of the `websockets` package (`ClientProtocol`), the same
library the server uses (qactuar/protocols/websocket.py), so both ends share one
implementation of the wire format.

It does not pool connections or share them with HTTP requests: a WebSocket owns
its connection for its whole life.  Failures are `qactuar.client.errors`
classes with their aquests 7xx codes; `WebSocketRefused` (716) carries the HTTP
answer of a server that did not switch protocols.

    async with connect("ws://127.0.0.1:8000/echo") as ws:
        await ws.send("hello")
        reply = await ws.recv()
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, NamedTuple

from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, ProtocolError
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response as HandshakeResponse
from websockets.protocol import SEND_EOF, State
from websockets.uri import InvalidURI, parse_uri

from qactuar.client import errors
from qactuar.client.tls import client_context

__all__ = [
    "CLOSE",
    "PING",
    "PONG",
    "Message",
    "WebSocket",
    "WebSocketClosed",
    "WebSocketRefused",
    "connect",
]

TEXT, BINARY, CONTINUATION = int(Opcode.TEXT), int(Opcode.BINARY), int(Opcode.CONT)
CLOSE, PING, PONG = int(Opcode.CLOSE), int(Opcode.PING), int(Opcode.PONG)

# The handshake's own fields: set by the protocol, never taken from the caller.
_HANDSHAKE_FIELDS = frozenset(("host", "upgrade", "connection", "sec-websocket-key",
                               "sec-websocket-version", "sec-websocket-extensions",
                               "sec-websocket-protocol"))
# Received messages held before reading from the socket pauses (the peer then waits).
_QUEUE_HIGH, _QUEUE_LOW = 64, 16

# The engine logs every frame at DEBUG; only its warnings are let through.
_frame_logger = logging.getLogger("qactuar.client.websocket.frames")
_frame_logger.setLevel(logging.WARNING)


class Message(NamedTuple):
    """One received message: its opcode and its data.

    TEXT gives str, BINARY bytes, PING and PONG their payload (bytes), CLOSE the
    close reason (str; the code is `WebSocket.close_code`).
    """

    opcode: int
    data: str | bytes


class WebSocketRefused(errors.ProtocolSwitchError):
    """The server answered the upgrade with something other than 101 Switching Protocols."""

    def __init__(self, message: str, *, status: int, reason: str,
                 headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


class WebSocketClosed(errors.ChannelClosed):
    """The WebSocket is closed; `close_code` and `close_reason` say how (1006: no close frame)."""

    def __init__(self, message: str, *, close_code: int | None,
                 close_reason: str | None) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.close_reason = close_reason


def _connect_error(error: BaseException, where: str) -> errors.ClientError:
    """The 7xx error class for a failure while opening the connection."""
    if isinstance(error, socket.gaierror):
        return errors.NameResolutionError(f"cannot resolve {where}: {error.strerror}")
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        reason = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        return errors.TLSError(f"TLS handshake with {where} failed: {reason or error}")
    if isinstance(error, TimeoutError):
        return errors.ConnectTimeout(f"connecting to {where} timed out")
    if isinstance(error, OSError):
        return errors.ConnectError(f"cannot connect to {where}: {error.strerror or error}")
    return errors.UnexpectedError(f"{type(error).__name__} while connecting to {where}: {error}")


def _field_pairs(headers: Any) -> list[tuple[str, str]]:
    """Caller headers as (name, value) str pairs; refuse the handshake's own and CR/LF."""
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    pairs = []
    for name, value in items:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if name.lower() in _HANDSHAKE_FIELDS:
            raise ValueError(f"header {name!r} is set by the WebSocket handshake itself; "
                             "use connect()'s subprotocols= / compression= instead")
        if any(c in name + value for c in "\r\n\0") or not name or " " in name or ":" in name:
            raise ValueError(f"invalid header field {name!r}: {value!r}")
        pairs.append((name, value))
    return pairs


class WebSocket(asyncio.Protocol):
    """An open WebSocket connection (made by `connect()`).

    `subprotocol` is the one the server chose (or None), `headers` the fields of its
    handshake answer, `extensions` the names of the negotiated extensions,
    `http_version` "HTTP/1.1" (an upgraded connection) or "HTTP/2" (RFC 8441, a stream).
    After the close: `close_code` and `close_reason` (1006 when the connection
    ended without a close frame).
    """

    def __init__(self, url: str, engine: Any, close_timeout: float | None) -> None:
        self.url = url
        self.http_version = "HTTP/1.1"
        self.subprotocol: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.extensions: list[str] = []
        self._engine = engine
        self._close_timeout = close_timeout
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[HandshakeResponse] = self._loop.create_future()
        # A handshake failure nobody awaits any more (the opening timed out) is not news.
        self._handshake.add_done_callback(
            lambda future: future.cancelled() or future.exception())
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._received: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._write_ready: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        # The message being reassembled from fragments.
        self._parts: list[bytes] = []
        self._text_decoder: codecs.IncrementalDecoder | None = None
        self._failed = False  # this side failed the connection (engine.fail)
        self._drop_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        engine.receive_data(data)
        for event in engine.events_received():
            if isinstance(event, Frame):
                self._frame_received(event)
            elif not self._handshake.done():
                self._handshake.set_result(event)
        if not self._handshake.done() and engine.handshake_exc is not None:
            self._handshake.set_exception(_handshake_error(self.url, engine.handshake_exc))
        self._flush()

    def eof_received(self) -> bool:
        self._engine.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._engine.receive_eof()  # idempotent; a close without a close frame is 1006
        if not self._handshake.done():
            self._handshake.set_exception(errors.NoResponse(
                f"{self.url}: the server closed the connection during the handshake"))
        if not self._lost.done():
            self._lost.set_result(None)
        if self._drop_timer is not None:
            self._drop_timer.cancel()
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(self._closed_error())
        self._pings.clear()
        self.resume_writing()
        self._wake()

    def pause_writing(self) -> None:
        if self._write_ready is None:
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        ready, self._write_ready = self._write_ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    # -- received frames --------------------------------------------------------

    def _frame_received(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._text_decoder = (codecs.getincrementaldecoder("utf-8")()
                                  if opcode is Opcode.TEXT else None)
            self._parts = []
            self._take_fragment(frame)
        elif opcode is Opcode.CONT:
            self._take_fragment(frame)
        elif opcode is Opcode.PONG:
            waiting = self._pings.pop(bytes(frame.data), None)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(time.perf_counter() - waiting[1])
            self._queue(Message(PONG, bytes(frame.data)))
        elif opcode is Opcode.PING:
            self._queue(Message(PING, bytes(frame.data)))  # the engine answered it
        elif opcode is Opcode.CLOSE:
            received = self._engine.close_rcvd
            self._queue(Message(CLOSE, received.reason if received is not None else ""))

    def _take_fragment(self, frame: Frame) -> None:
        decoder = self._text_decoder
        if decoder is not None:
            try:
                self._parts.append(decoder.decode(frame.data, frame.fin))  # type: ignore[arg-type]
            except UnicodeDecodeError:
                # RFC 6455 8.1: invalid UTF-8 in a text message fails the connection.
                self._failed = True
                self._engine.fail(1007, "invalid UTF-8 in a text message")
                return
        else:
            self._parts.append(bytes(frame.data))
        if frame.fin:
            parts, self._parts = self._parts, []
            if decoder is not None:
                self._queue(Message(TEXT, "".join(parts)))  # type: ignore[arg-type]
            else:
                self._queue(Message(BINARY, b"".join(parts)))  # type: ignore[arg-type]

    def _queue(self, message: Message) -> None:
        self._received.append(message)
        if len(self._received) >= _QUEUE_HIGH and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _flush(self) -> None:
        """Write what the engine has to send (answers to pings and closes included)."""
        transport = self._transport
        for data in self._engine.data_to_send():
            if transport is None or transport.is_closing():
                break
            if data is SEND_EOF or data == b"":
                if transport.can_write_eof():
                    transport.write_eof()
            else:
                transport.write(data)
        if self._engine.state is State.CLOSED and transport is not None:
            transport.close()
        elif self._drop_timer is None and transport is not None and \
                self._engine.close_expected() and self._close_timeout is not None:
            # A close frame went out: the server should end the connection; if it does
            # not within the close timeout, drop it (nothing then waits forever).
            self._drop_timer = self._loop.call_later(self._close_timeout, transport.abort)

    # -- the caller's side ------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether no more messages can be sent (a close frame was sent or received)."""
        return self._engine.state is not State.OPEN

    def _close_frame(self) -> Close | None:
        """The close frame that says how this connection ended: the server's, or ours when
        this side failed the connection (bad UTF-8, a message too big, an unfinished send)."""
        engine = self._engine
        if engine.close_rcvd is not None:
            return engine.close_rcvd
        if engine.close_sent is not None and (self._failed or engine.parser_exc is not None):
            return engine.close_sent
        return None

    @property
    def close_code(self) -> int | None:
        """How the connection ended (see `_close_frame`); 1006 if it ended without a close
        frame; None while open."""
        frame = self._close_frame()
        if frame is not None:
            return frame.code
        return 1006 if self._engine.state is State.CLOSED else None

    @property
    def close_reason(self) -> str | None:
        frame = self._close_frame()
        if frame is not None:
            return frame.reason
        return "" if self._engine.state is State.CLOSED else None

    def _closed_error(self) -> WebSocketClosed:
        code, reason = self.close_code, self.close_reason
        detail = f"{code} {reason}".rstrip() if code is not None else "no close frame"
        return WebSocketClosed(f"{self.url}: the WebSocket is closed ({detail})",
                               close_code=code, close_reason=reason)

    async def recv(self) -> str | bytes:
        """The next text (str) or binary (bytes) message; raise WebSocketClosed after the close."""
        return (await self.recv_message(control=False)).data

    async def recv_message(self, control: bool = False) -> Message:
        """The next message as `Message(opcode, data)`.

        With `control=True`, received pings, pongs and the close frame are returned too
        (the ping is answered automatically either way); otherwise they are skipped.
        Raise WebSocketClosed once nothing more can arrive.
        """
        received = self._received
        while True:
            while received:
                message = received.popleft()
                if self._reading_paused and len(received) <= _QUEUE_LOW and self._transport:
                    self._reading_paused = False
                    self._transport.resume_reading()
                if control or message.opcode == TEXT or message.opcode == BINARY:
                    return message
            if self._engine.state is not State.OPEN and (
                    self._lost.done() or self._engine.close_rcvd is not None):
                raise self._closed_error()
            self._waiter = self._loop.create_future()
            await self._waiter

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        """Every message until the close (a normal end of the loop, not an exception)."""
        while True:
            try:
                yield await self.recv()
            except WebSocketClosed:
                return

    async def send(self, message: str | bytes | Iterable[str | bytes]
                   | AsyncIterable[str | bytes]) -> None:
        """Send a text (str) or binary (bytes-like) message.

        An iterable or async iterable of str (or of bytes) is sent as one fragmented
        message, one frame per item.
        """
        if isinstance(message, str):
            self._check_open()
            self._engine.send_text(message.encode())
        elif isinstance(message, bytes | bytearray | memoryview):
            self._check_open()
            self._engine.send_binary(bytes(message))
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), is_async=True)
            return
        elif isinstance(message, Iterable):
            await self._send_fragments(iter(message), is_async=False)
            return
        else:
            raise TypeError(f"a WebSocket message is str, bytes or an iterable of them, "
                            f"not {type(message).__name__}")
        self._flush()
        if self._write_ready is not None:
            await self._write_ready

    async def _send_fragments(self, items: Any, is_async: bool) -> None:
        async def next_item() -> Any:
            try:
                item = await items.__anext__() if is_async else next(items)
            except (StopIteration, StopAsyncIteration):
                return None
            if not isinstance(item, kind):
                raise TypeError("the fragments of one message must all be str or all bytes")
            return item

        kind: Any = str | bytes | bytearray | memoryview
        current = await next_item()
        if current is None:
            return
        kind = str if isinstance(current, str) else bytes | bytearray | memoryview
        first = True
        try:
            while current is not None:
                following = await next_item()
                data = current.encode() if isinstance(current, str) else bytes(current)
                fin = following is None
                self._check_open()
                if first:
                    send = self._engine.send_text if kind is str else self._engine.send_binary
                    send(data, fin=fin)
                    first = False
                else:
                    self._engine.send_continuation(data, fin=fin)
                self._flush()
                if self._write_ready is not None:
                    await self._write_ready
                current = following
        except BaseException:
            # The peer must not take the fragments sent so far for a whole message.
            if not first and self._engine.state is State.OPEN:
                self._failed = True
                self._engine.fail(1011, "the message could not be completed")
                self._flush()
            raise

    def _check_open(self) -> None:
        if self._engine.state is not State.OPEN:
            raise self._closed_error()

    async def ping(self, data: bytes | str | None = None,
                   timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; return the round trip in seconds."""
        self._check_open()
        payload = os.urandom(4) if data is None else (
            data.encode() if isinstance(data, str) else bytes(data))
        while payload in self._pings:
            payload = os.urandom(4)
        future: asyncio.Future[float] = self._loop.create_future()
        # perf_counter: uvloop's loop clock has millisecond steps.
        self._pings[payload] = (future, time.perf_counter())
        self._engine.send_ping(payload)
        self._flush()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._pings.pop(payload, None)
            raise errors.ReadTimeout(f"{self.url}: no pong within {timeout}s") from None

    async def pong(self, data: bytes | str = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat)."""
        self._check_open()
        self._engine.send_pong(data.encode() if isinstance(data, str) else bytes(data))
        self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with `code` and `reason`, wait for the server's close, then drop the
        connection (after the close timeout at the latest).  Closing twice is harmless."""
        if self._engine.state is State.OPEN:
            try:
                Close(code, reason).check()
            except ProtocolError:
                raise ValueError(f"{code} is not a close code an endpoint may send "
                                 "(1000-1003, 1007-1014, 3000-4999)") from None
            if len(reason.encode()) > 123:
                raise ValueError("a close reason is at most 123 bytes of UTF-8")
            self._engine.send_close(code, reason)
            self._flush()
        await self._wait_closed()

    async def _wait_closed(self) -> None:
        transport = self._transport
        if transport is None or self._lost.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), self._close_timeout)
        except TimeoutError:
            transport.abort()
            await self._lost

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake."""
        if self._transport is not None:
            self._transport.abort()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lost.done():
            return
        if self._engine.state is State.OPEN:
            await self.close(1000 if exc_info[0] is None else 1011)
        else:
            await self._wait_closed()


class _Connecting:
    """What `connect()` returns: awaitable (an open WebSocket) and an async context manager."""

    def __init__(self, opener: Any) -> None:
        self._opener = opener
        self._websocket: WebSocket | None = None

    def __await__(self) -> Any:
        return self._opener().__await__()

    async def __aenter__(self) -> WebSocket:
        self._websocket = await self._opener()
        return self._websocket

    async def __aexit__(self, *exc_info: object) -> None:
        if self._websocket is not None:
            await self._websocket.__aexit__(*exc_info)


def connect(url: str, *, subprotocols: Iterable[str] | None = None, headers: Any = None,
            origin: str | None = None, compression: str | None = "deflate",
            verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
            cert: str | tuple[str, str] | None = None, open_timeout: float | None = 10,
            close_timeout: float | None = 10, max_size: int | None = 2**20,
            http2: bool = False) -> _Connecting:
    """Open a WebSocket to a ws:// or wss:// URL.

    subprotocols: offered in order of preference; the chosen one is `ws.subprotocol`.
    headers: extra handshake fields (a mapping or (name, value) pairs): Authorization,
        Cookie, ... (the handshake's own fields are refused).
    compression: "deflate" offers permessage-deflate (RFC 7692); None offers nothing.
    verify, cert: TLS for wss://, the same rules as the Client's.
    open_timeout: seconds for the connection and the handshake together (702 beyond).
    close_timeout: seconds to wait for the server's close before dropping the connection.
    max_size: the largest message accepted (the connection closes with 1009 beyond it).
    http2: open the WebSocket on an HTTP/2 stream (RFC 8441 extended CONNECT): for
        wss://, when the server picks h2 by ALPN and allows it, else over HTTP/1.1 as
        usual; for ws://, by h2c prior knowledge, and 716 if the server cannot.

    Use as `async with connect(url) as ws:` (closed with 1000 on leaving, 1011 on an
    exception) or `ws = await connect(url)` (then `await ws.close()`).
    """
    if compression not in (None, "deflate"):
        raise ValueError(f'compression is "deflate" or None, not {compression!r}')
    try:
        uri = parse_uri(url)
    except InvalidURI as error:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r} ({error})") from None
    extra = _field_pairs(headers)
    offered = list(subprotocols) if subprotocols is not None else None
    context = client_context(verify, cert, http2=False) if uri.secure else None
    h2_context = client_context(verify, cert, http2=True) if uri.secure and http2 else None

    async def open_websocket() -> WebSocket:
        try:
            async with asyncio.timeout(open_timeout):
                if http2:
                    from qactuar.client.websocket_h2 import NoExtendedConnect

                    engine = _client_engine(uri, origin, offered, compression, max_size,
                                            State.OPEN)
                    try:
                        return await _open_h2(url, uri, engine, extra, h2_context,
                                              close_timeout)
                    except NoExtendedConnect:
                        if not uri.secure:
                            raise
                engine = _client_engine(uri, origin, offered, compression, max_size)
                return await _open(url, uri, engine, extra, context, close_timeout)
        except TimeoutError:
            raise errors.ConnectTimeout(
                f"{url}: no WebSocket within {open_timeout}s (connect and handshake)") from None

    return _Connecting(open_websocket)


def _client_engine(uri: Any, origin: str | None, subprotocols: list[str] | None,
                   compression: str | None, max_size: int | None,
                   state: State = State.CONNECTING) -> Any:
    from websockets.client import ClientProtocol

    extensions = [ClientPerMessageDeflateFactory(client_max_window_bits=True)] \
        if compression == "deflate" else None
    return ClientProtocol(uri, origin=origin, extensions=extensions,  # type: ignore[arg-type]
                          subprotocols=subprotocols,  # type: ignore[arg-type]
                          state=state, max_size=max_size, logger=_frame_logger)


async def _open_h2(url: str, uri: Any, engine: Any, extra: list[tuple[str, str]],
                   context: ssl.SSLContext | None, close_timeout: float | None) -> WebSocket:
    """The WebSocket on a stream of its own HTTP/2 connection (websocket_h2.py)."""
    from qactuar.client.websocket_h2 import H2Carrier, NoExtendedConnect, open_stream

    loop = asyncio.get_running_loop()
    where = f"{uri.host}:{uri.port}"
    carrier = H2Carrier(where)
    try:
        await loop.create_connection(lambda: carrier, uri.host, uri.port, ssl=context,
                                     server_hostname=uri.host if context else None)
    except (OSError, ssl.SSLError) as error:
        raise _connect_error(error, where) from None
    try:
        if context is not None:
            ssl_object = carrier.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
            if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
                raise NoExtendedConnect(f"{url}: the server did not choose HTTP/2 (ALPN)")
        headers = await open_stream(carrier, uri, engine, extra, url)
    except BaseException:
        if carrier.transport is not None:
            carrier.transport.abort()
        raise
    websocket = WebSocket(url, engine, close_timeout)
    websocket.http_version = "HTTP/2"
    websocket._handshake.set_result(None)  # type: ignore[arg-type]
    websocket.headers = headers
    websocket.subprotocol = engine.subprotocol
    websocket.extensions = [extension.name for extension in engine.extensions]
    carrier.attach(websocket)
    return websocket


async def _open(url: str, uri: Any, engine: Any, extra: list[tuple[str, str]],
                context: ssl.SSLContext | None, close_timeout: float | None) -> WebSocket:
    loop = asyncio.get_running_loop()
    where = f"{uri.host}:{uri.port}"
    websocket = WebSocket(url, engine, close_timeout)
    try:
        await loop.create_connection(lambda: websocket, uri.host, uri.port, ssl=context,
                                     server_hostname=uri.host if context else None)
    except (OSError, ssl.SSLError) as error:
        raise _connect_error(error, where) from None
    request = engine.connect()
    for name, value in extra:
        request.headers[name] = value
    engine.send_request(request)
    websocket._flush()
    try:
        response = await websocket._handshake
    except BaseException:
        websocket.abort()
        raise
    if engine.handshake_exc is not None:
        websocket.abort()
        raise _handshake_error(url, engine.handshake_exc)
    websocket.headers = list(response.headers.raw_items())
    websocket.subprotocol = engine.subprotocol
    websocket.extensions = [extension.name for extension in engine.extensions]
    return websocket


def _handshake_error(url: str, error: Exception) -> errors.ClientError:
    if isinstance(error, InvalidStatus):
        answer = error.response
        return WebSocketRefused(
            f"{url}: the server refused the WebSocket: {answer.status_code} "
            f"{_printable(answer.reason_phrase)}", status=answer.status_code,
            reason=answer.reason_phrase,
            headers=list(answer.headers.raw_items()), body=bytes(answer.body or b""))
    if isinstance(error, InvalidMessage):  # not an HTTP answer at all: as for HTTP, 715
        cause = f" ({_printable(str(error.__cause__))})" if error.__cause__ else ""
        return errors.ResponseHeaderError(f"{url}: malformed handshake answer: {error}{cause}")
    if isinstance(error, InvalidHandshake):
        return errors.ProtocolSwitchError(
            f"{url}: invalid WebSocket handshake answer: {_printable(str(error))}")
    return errors.ResponseHeaderError(
        f"{url}: invalid WebSocket handshake answer: {_printable(str(error))}")


def _printable(text: str) -> str:
    """The server's words with control characters escaped (they end up on a terminal)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)

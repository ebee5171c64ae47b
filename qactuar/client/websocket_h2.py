"""WebSocket over HTTP/2 (RFC 8441): the client side of an extended CONNECT.

Owns the HTTP/2 part of a WebSocket opened with `connect(url, http2=True)`: its
own HTTP/2 connection (TLS with ALPN h2, or h2c prior knowledge for ws://), the
check that the server allows extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL),
the CONNECT with `:protocol websocket` and its answer (200 opens; anything else
is `WebSocketRefused`), and `StreamTransport`, which makes that one stream look
like the byte transport `WebSocket` writes to: DATA frames within the flow-control
windows, END_STREAM for the end, RST_STREAM for an abort.  Frames, pings, the
close handshake and permessage-deflate stay in `websocket.py`, exactly as over
HTTP/1.1.  One WebSocket per HTTP/2 connection: it is not shared with the
Client's pools.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from websockets.datastructures import Headers
from websockets.headers import build_extension, build_subprotocol

from qactuar.client import errors

# Connection-specific fields HTTP/2 forbids (RFC 9113 8.2.2), never sent.
_FORBIDDEN = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "upgrade", "host", "te"))
_HIGH_WATER = 64 * 1024  # bytes queued on the stream before the WebSocket's sends wait


class NoExtendedConnect(errors.ProtocolSwitchError):
    """The server does not speak HTTP/2 here, or does not allow extended CONNECT."""


class H2Carrier(asyncio.Protocol):
    """The HTTP/2 connection that carries one WebSocket stream."""

    def attach(self, websocket: Any) -> None:
        """Hand the open stream to `websocket`, with what arrived before it could take it."""
        self.websocket = websocket
        websocket.connection_made(self.stream)
        early, self.early_data = bytes(self.early_data), bytearray()
        if early:
            websocket.data_received(early)
        if self.stream_ended.done():
            websocket.eof_received()
        if self.transport is None or self.transport.is_closing():
            websocket.connection_lost(None)

    def __init__(self, where: str) -> None:
        self.where = where
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.settings: asyncio.Future[bool] = self.loop.create_future()
        self.answer: asyncio.Future[list[tuple[bytes, bytes]]] = self.loop.create_future()
        # The stream's DATA before the WebSocket takes over: a refusal's body, or the
        # first frames, which may arrive with the 200 answer.
        self.early_data = bytearray()
        self.stream_ended: asyncio.Future[None] = self.loop.create_future()
        self.stream_id = 0
        self.stream: StreamTransport | None = None
        self.websocket: Any = None
        for future in (self.settings, self.answer):
            # A failure nobody awaits any more (the opening gave up) is not news.
            future.add_done_callback(_mark_retrieved)

    # -- asyncio.Protocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            self._fail(NoExtendedConnect(f"{self.where}: not an HTTP/2 server ({error})"))
            if self.transport is not None:
                self.transport.close()  # unusable: the WebSocket, if any, sees it end
            return
        for event in events:
            self._event(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(NoExtendedConnect(f"{self.where}: the connection closed before the "
                                     "WebSocket opened"))
        if self.websocket is not None:
            self.websocket.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.websocket is not None:
            self.websocket.pause_writing()

    def resume_writing(self) -> None:
        if self.websocket is not None:
            self.websocket.resume_writing()

    # -- HTTP/2 events --------------------------------------------------------------
    def _event(self, event: Any) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.settings.done():
                self.settings.set_result(self.conn.remote_settings.enable_connect_protocol == 1)
        elif isinstance(event, h2.events.ResponseReceived):
            if event.stream_id == self.stream_id and not self.answer.done():
                self.answer.set_result(list(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id != self.stream_id:
                return
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if self.websocket is not None:
                self.websocket.data_received(event.data)
            else:
                self.early_data += event.data
        elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
            if event.stream_id != self.stream_id:
                return
            if self.stream is not None:
                self.stream.ended = True
            if not self.stream_ended.done():
                self.stream_ended.set_result(None)
            if self.websocket is not None:
                self.websocket.eof_received()
                if isinstance(event, h2.events.StreamReset) and self.transport is not None:
                    self.transport.close()
        elif isinstance(event, h2.events.WindowUpdated):
            if self.stream is not None:
                self.stream.send_pending()
        elif isinstance(event, h2.events.ConnectionTerminated) and self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        for future in (self.settings, self.answer):
            if not future.done():
                future.set_exception(error)
        if not self.stream_ended.done():
            self.stream_ended.set_result(None)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class StreamTransport(asyncio.Transport):
    """The WebSocket's stream as a byte transport (what `WebSocket` writes to)."""

    def __init__(self, carrier: H2Carrier) -> None:
        super().__init__()
        self.carrier = carrier
        self.pending = bytearray()
        self.end_after_pending = False
        self.ended = False  # the server ended or reset the stream
        self.closing = False
        self.writing_paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or self.end_after_pending:
            return
        self.pending += data
        self.send_pending()

    def send_pending(self) -> None:
        carrier = self.carrier
        conn, stream_id = carrier.conn, carrier.stream_id
        try:
            while self.pending:
                window = min(conn.local_flow_control_window(stream_id),
                             conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = bytes(self.pending[:window])
                del self.pending[:window]
                conn.send_data(stream_id, chunk)
            if not self.pending and self.end_after_pending:
                conn.end_stream(stream_id)
                self.end_after_pending = False
                self.closing = True
        except h2.exceptions.StreamClosedError:
            self.pending.clear()
        carrier.flush()
        self._pressure()

    def _pressure(self) -> None:
        websocket = self.carrier.websocket
        if websocket is None:
            return
        if len(self.pending) > _HIGH_WATER and not self.writing_paused:
            self.writing_paused = True
            websocket.pause_writing()
        elif len(self.pending) <= _HIGH_WATER and self.writing_paused:
            self.writing_paused = False
            websocket.resume_writing()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self.closing:
            self.end_after_pending = True
            self.send_pending()

    def close(self) -> None:
        """The WebSocket is done: end the stream, then the connection (it carried only it)."""
        self.write_eof()
        self.closing = True
        self.carrier.close()

    def abort(self) -> None:
        self.closing = True
        carrier = self.carrier
        try:
            carrier.conn.reset_stream(carrier.stream_id, h2.errors.ErrorCodes.CANCEL)
            carrier.flush()
        except h2.exceptions.StreamClosedError:
            pass
        if carrier.transport is not None:
            carrier.transport.abort()

    def is_closing(self) -> bool:
        return self.closing or self.ended

    def pause_reading(self) -> None:
        if self.carrier.transport is not None:
            self.carrier.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.carrier.transport is not None:
            self.carrier.transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self.carrier.transport
        return default if transport is None else transport.get_extra_info(name, default)


async def open_stream(carrier: H2Carrier, uri: Any, engine: Any,
                      extra: list[tuple[str, str]], url: str) -> list[tuple[str, str]]:
    """Send the extended CONNECT for `uri`; return the 200 answer's fields.

    Raise NoExtendedConnect when the server does not allow it, WebSocketRefused
    (from websocket.py) for another status.
    """
    from qactuar.client.websocket import WebSocketRefused

    if not await carrier.settings:
        raise NoExtendedConnect(f"{url}: the HTTP/2 server does not allow WebSocket "
                                "(no SETTINGS_ENABLE_CONNECT_PROTOCOL)")
    conn = carrier.conn
    carrier.stream_id = conn.get_next_available_stream_id()
    default_port = 443 if uri.secure else 80
    authority = uri.host if uri.port == default_port else f"{uri.host}:{uri.port}"
    fields = [(b":method", b"CONNECT"), (b":protocol", b"websocket"),
              (b":scheme", b"https" if uri.secure else b"http"),
              (b":path", uri.resource_name.encode()), (b":authority", authority.encode()),
              (b"sec-websocket-version", b"13")]
    if engine.available_extensions:
        offer = build_extension([(factory.name, factory.get_request_params())
                                 for factory in engine.available_extensions])
        fields.append((b"sec-websocket-extensions", offer.encode()))
    if engine.available_subprotocols:
        fields.append((b"sec-websocket-protocol",
                       build_subprotocol(engine.available_subprotocols).encode()))
    fields += [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in extra if name.lower() not in _FORBIDDEN]
    conn.send_headers(carrier.stream_id, fields)
    carrier.flush()
    answer = [(name.decode("latin-1"), value.decode("latin-1"))
              for name, value in await carrier.answer]
    status_text = next((value for name, value in answer if name == ":status"), "0")
    fields_only = [(name, value) for name, value in answer if not name.startswith(":")]
    status = int(status_text) if status_text.isdigit() else 0
    if status != 200:
        await carrier.stream_ended
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        raise WebSocketRefused(f"{url}: the server refused the WebSocket: {status} {reason}",
                               status=status, reason=reason, headers=fields_only,
                               body=bytes(carrier.early_data))
    headers = Headers(fields_only)
    engine.extensions = engine.process_extensions(headers)
    engine.subprotocol = engine.process_subprotocol(headers)
    carrier.stream = StreamTransport(carrier)
    return fields_only

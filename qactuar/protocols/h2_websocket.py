"""WebSocket over one HTTP/2 stream (RFC 8441, extended CONNECT).

Owns the seam between the two: a `StreamTransport` that makes one HTTP/2
stream look like the transport `WebSocketProtocol` writes to (DATA frames
within the flow-control window, END_STREAM for close, RST_STREAM for
abort, reading paused by holding WINDOW_UPDATEs back), and the answers that
differ from HTTP/1.1: `:status 200` instead of 101, and a refusal as an
HTTP/2 response on the stream.  Frames, pings and the close handshake stay
in `websocket.py`; the ASGI session in `ws_stream.py`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from websockets.extensions.base import Extension

from qactuar.protocols.h2_connection import CANCEL
from qactuar.protocols.websocket import WebSocketProtocol, find_control_byte, negotiate_extensions

if TYPE_CHECKING:
    from qactuar.protocols.http2 import H2Protocol, _StreamSink

# Headers of the answer the server sets itself.
_OWN_HEADERS = frozenset((b"upgrade", b"connection", b"sec-websocket-accept",
                          b"sec-websocket-extensions", b"sec-websocket-protocol",
                          b"content-length", b"transfer-encoding", b"keep-alive"))


def handshake_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """What is wrong with an extended CONNECT for `websocket`, or None."""
    # HTTP/2 itself refuses only NUL, CR and LF in a value (RFC 9113 8.2.1); a
    # handshake is held to HTTP/1.1's rule, as over HTTP/1.1.
    if any(find_control_byte(value) for _, value in headers):
        return "Bad Request: a header value holds control bytes"
    versions = [value for name, value in headers if name == b"sec-websocket-version"]
    if versions != [b"13"]:
        return "Bad Request: Sec-WebSocket-Version must be 13"
    return None


class StreamTransport(asyncio.Transport):
    """One HTTP/2 stream as a byte transport for `WebSocketProtocol`."""

    def __init__(self, connection: H2Protocol, sink: _StreamSink) -> None:
        super().__init__()
        self.connection = connection
        self.sink = sink
        self.reading_paused = False
        self.unacknowledged = 0  # bytes received while reading was paused
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.sink.ended:
            return
        self.sink.out += data
        self.connection.flush_stream(self.sink)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.sink.out_end = True
        self.connection.flush_stream(self.sink)

    def abort(self) -> None:
        self._closing = True
        self.connection.reset_stream(self.sink, CANCEL)

    def is_closing(self) -> bool:
        return self._closing or self.sink.ended

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self.unacknowledged:
            size, self.unacknowledged = self.unacknowledged, 0
            self.connection.acknowledge(self.sink.stream_id, size)

    def is_reading(self) -> bool:
        return not self.reading_paused

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self.connection.transport is None:
            return default
        return self.connection.transport.get_extra_info(name, default)


class H2WebSocketProtocol(WebSocketProtocol):
    """A WebSocket session on an HTTP/2 stream; the frames are RFC 6455's."""

    stream_transport: StreamTransport
    ends_connection = False  # its "connection" is one stream of an HTTP/2 connection

    def _write_accept(self, subprotocol: str | None,
                      headers: list[tuple[bytes, bytes]]) -> list[Extension]:
        fields = [(b":status", b"200")]
        extensions: list[Extension] = []
        if self.config.WS_PER_MESSAGE_DEFLATE:
            answer, extensions = negotiate_extensions(self._request_headers)
            if answer:
                fields.append((b"sec-websocket-extensions", answer.encode()))
        if subprotocol:
            fields.append((b"sec-websocket-protocol", subprotocol.encode()))
        fields += [(name.lower(), value) for name, value in headers
                   if name.lower() not in _OWN_HEADERS]
        transport = self.stream_transport
        transport.connection.send_stream_headers(transport.sink, fields, end=False)
        return extensions

    def send_http_response(self, status: int, headers: list[tuple[bytes, bytes]],
                           body: bytes) -> None:
        if self._closed:
            return
        fields = [(b":status", str(status).encode())]
        fields += [(name.lower(), value) for name, value in headers
                   if name.lower() not in _OWN_HEADERS]
        fields.append((b"content-length", b"%d" % len(body)))
        transport = self.stream_transport
        transport.connection.send_stream_headers(transport.sink, fields, end=not body)
        if body:
            transport.write(body)
        transport.close()

"""WebSocket over one HTTP/3 stream (RFC 9220, extended CONNECT as in RFC 8441).

Owns only the seam: a `StreamTransport` that makes one HTTP/3 request stream look
like the transport `WebSocketProtocol` writes to (DATA frames, the stream's end
for close, a reset for abort).  The session itself, its frames, pings and close
handshake, and the HTTP/2-style answers (`:status 200`, a refusal as a response
on the stream) are `h2_websocket.H2WebSocketProtocol`'s, unchanged: RFC 9220
asks for exactly what RFC 8441 does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qactuar.protocols.http3 import H3Session, _H3StreamSink

H3_REQUEST_CANCELLED = 0x10C


class StreamTransport(asyncio.Transport):
    """One HTTP/3 stream as a byte transport for `WebSocketProtocol`."""

    def __init__(self, connection: H3Session, sink: _H3StreamSink) -> None:
        super().__init__()
        self.connection = connection  # what H2WebSocketProtocol calls send_stream_headers on
        self.sink = sink
        self.reading_paused = False
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.sink.ended:
            return
        self.connection.send_body(self.sink, bytes(data), False)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.connection.send_body(self.sink, b"", True)
        self.connection.stream_finished(self.sink)

    def abort(self) -> None:
        self._closing = True
        self.connection.reset_stream(self.sink, H3_REQUEST_CANCELLED)

    def is_closing(self) -> bool:
        return self._closing or self.sink.ended

    # QUIC's flow control is aioquic's: reading "paused" only stops the session's reads.
    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def is_reading(self) -> bool:
        return not self.reading_paused

    def get_write_buffer_size(self) -> int:
        return self.connection.backlog(self.sink.stream_id)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.connection.client
        if name == "sockname":
            return self.connection.server
        return default

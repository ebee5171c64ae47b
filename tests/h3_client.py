"""A small HTTP/3 client for the tests, on aioquic's client API (curl here has no HTTP/3).

`H3Client` is one QUIC connection: `request()` sends a request (a body in
parts, trailers) and returns the response's status, headers, body and
trailers; `open_stream()`/`stream_events()` drive a stream by hand.  It
records whether the server asked for address validation (Retry) and the
GOAWAY it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset


@dataclass
class H3Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    reset: int | None = None  # the stream was reset with this code

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


class _Protocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.queues: dict[int, asyncio.Queue[H3Event | StreamReset | None]] = {}
        self.terminated: ConnectionTerminated | None = None
        self.goaway: int | None = None
        self.retried = False
        self._uni: dict[int, bytearray] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        self._watch_control_stream(event)
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            for queue in self.queues.values():
                queue.put_nowait(None)
        if isinstance(event, StreamReset) and event.stream_id in self.queues:
            self.queues[event.stream_id].put_nowait(event)
        if getattr(self._quic, "_retry_source_connection_id", None):
            self.retried = True
        for h3_event in self.h3.handle_event(event):
            stream_id = getattr(h3_event, "stream_id", None)
            if stream_id in self.queues:
                self.queues[stream_id].put_nowait(h3_event)

    def _watch_control_stream(self, event: QuicEvent) -> None:
        """aioquic's client reads a GOAWAY and drops it: the server's control stream (its
        first unidirectional stream, type 0x00) is read here as well."""
        if not isinstance(event, StreamDataReceived) or event.stream_id % 4 != 3:
            return
        data = self._uni.setdefault(event.stream_id, bytearray())
        data += event.data
        buf = Buffer(data=bytes(data))
        try:
            if buf.pull_uint_var() != 0x00:
                return  # an encoder or decoder stream
            while not buf.eof():
                kind = buf.pull_uint_var()
                payload = buf.pull_bytes(buf.pull_uint_var())
                if kind == FrameType.GOAWAY:
                    self.goaway = Buffer(data=payload).pull_uint_var()
        except BufferReadError:
            pass  # the rest of a frame is still on its way


def client_configuration(ca: str | None = None) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                      server_name="localhost", idle_timeout=10)
    if ca:
        configuration.load_verify_locations(ca)
    else:
        configuration.verify_mode = ssl.CERT_NONE
    return configuration


class StreamEvents:
    """A stream's events as they arrive (an iterator object rather than an async
    generator: one left after a `break` needs no closing on the test's loop)."""

    def __init__(self, protocol: Any, stream_id: int) -> None:
        self.protocol = protocol
        self.queue = protocol.queues[stream_id]

    def __aiter__(self) -> StreamEvents:
        return self

    async def __anext__(self) -> H3Event | StreamReset:
        event = await self.queue.get()
        if event is None:
            raise ConnectionError(f"connection closed: {self.protocol.terminated}")
        return event


class H3Client:
    def __init__(self, protocol: _Protocol, authority: str) -> None:
        self.protocol = protocol
        self.authority = authority.encode()

    @property
    def retried(self) -> bool:
        return self.protocol.retried

    def open_stream(self, method: str, path: str, headers: list[tuple[bytes, bytes]] = (),
                    end: bool = True, fields: list[tuple[bytes, bytes]] | None = None) -> int:
        """Send a request head (`fields`: the whole header block as given, unchecked)."""
        protocol = self.protocol
        stream_id = protocol._quic.get_next_available_stream_id()
        protocol.queues[stream_id] = asyncio.Queue()
        block = fields if fields is not None else [
            (b":method", method.encode()), (b":scheme", b"https"),
            (b":authority", self.authority), (b":path", path.encode()), *headers]
        protocol.h3.send_headers(stream_id, block, end_stream=end)
        protocol.transmit()
        return stream_id

    def send_data(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.protocol.h3.send_data(stream_id, data, end_stream=end)
        self.protocol.transmit()

    def send_trailers(self, stream_id: int, trailers: list[tuple[bytes, bytes]]) -> None:
        self.protocol.h3.send_headers(stream_id, trailers, end_stream=True)
        self.protocol.transmit()

    def reset(self, stream_id: int, code: int = 0x10C) -> None:
        self.protocol._quic.reset_stream(stream_id, code)
        self.protocol.transmit()

    async def response(self, stream_id: int, timeout: float = 10) -> H3Response:
        """Read the stream's response to its end."""
        answer = H3Response()
        body = bytearray()
        async with asyncio.timeout(timeout):
            async for event in self.stream_events(stream_id):
                if isinstance(event, StreamReset):
                    answer.reset = event.error_code
                    break
                if isinstance(event, HeadersReceived):
                    if answer.status == 0:
                        answer.status = int(dict(event.headers)[b":status"])
                        answer.headers = [(k, v) for k, v in event.headers
                                          if not k.startswith(b":")]
                    else:
                        answer.trailers = list(event.headers)
                elif isinstance(event, DataReceived):
                    body += event.data
                if getattr(event, "stream_ended", False):
                    break
        answer.body = bytes(body)
        return answer

    def stream_events(self, stream_id: int) -> StreamEvents:
        return StreamEvents(self.protocol, stream_id)

    async def request(self, method: str, path: str, headers: list[tuple[bytes, bytes]] = (),
                      body: bytes | list[bytes] = b"",
                      trailers: list[tuple[bytes, bytes]] | None = None,
                      timeout: float = 10) -> H3Response:
        parts = [body] if isinstance(body, bytes) else list(body)
        has_body = any(parts) or trailers is not None
        stream_id = self.open_stream(method, path, list(headers), end=not has_body)
        if has_body:
            for index, part in enumerate(parts):
                self.send_data(stream_id, part, end=index == len(parts) - 1
                               and trailers is None)
            if trailers is not None:
                self.send_trailers(stream_id, trailers)
        return await self.response(stream_id, timeout)


@contextlib.asynccontextmanager
async def h3_connect(host: str, port: int, ca: str | None = None,
                     timeout: float = 10) -> AsyncIterator[H3Client]:
    """One HTTP/3 connection to the server at host:port (over UDP)."""
    async with asyncio.timeout(timeout):
        context = connect(host, port, configuration=client_configuration(ca),
                          create_protocol=_Protocol, wait_connected=True)
        protocol = await context.__aenter__()
    try:
        yield H3Client(protocol, f"localhost:{port}")  # type: ignore[arg-type]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.__aexit__(None, None, None), 5)

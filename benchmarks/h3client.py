"""The HTTP/3 load client of benchmarks/http3.py: one aioquic connection, GETs on it.

Kept to what a load generator needs: a request is a header block and the wait for the
end of its stream; the body is counted, not kept.  Certificates are not checked (the
benchmark's own self-signed pair).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent


class _LoadProtocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiting: dict[int, list[Any]] = {}  # stream -> [future, status]

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            for future, _ in self.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self.waiting.clear()
        for h3_event in self.h3.handle_event(event):
            slot = self.waiting.get(getattr(h3_event, "stream_id", -1))
            if slot is None:
                continue
            if isinstance(h3_event, HeadersReceived):
                slot[1] = int(dict(h3_event.headers).get(b":status", b"0"))
            if isinstance(h3_event, HeadersReceived | DataReceived) and h3_event.stream_ended:
                del self.waiting[h3_event.stream_id]
                if not slot[0].done():
                    slot[0].set_result(slot[1])


class H3LoadClient:
    def __init__(self, context: Any, protocol: _LoadProtocol, port: int) -> None:
        self._context = context
        self.protocol = protocol
        self.authority = f"localhost:{port}".encode()

    async def get(self, path: str) -> int:
        protocol = self.protocol
        stream_id = protocol._quic.get_next_available_stream_id()
        future = asyncio.get_running_loop().create_future()
        protocol.waiting[stream_id] = [future, 0]
        protocol.h3.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", self.authority),
            (b":path", path.encode())], end_stream=True)
        protocol.transmit()
        async with asyncio.timeout(10):
            return await future

    async def __aenter__(self) -> H3LoadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # a connection closing badly is not measured
            await asyncio.wait_for(self._context.__aexit__(None, None, None), 5)


async def connect_h3(port: int, host: str = "127.0.0.1") -> H3LoadClient:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                      verify_mode=ssl.CERT_NONE, idle_timeout=20)
    context = connect(host, port, configuration=configuration,
                      create_protocol=_LoadProtocol, wait_connected=True)
    async with asyncio.timeout(10):
        protocol = await context.__aenter__()
    return H3LoadClient(context, protocol, port)  # type: ignore[arg-type]

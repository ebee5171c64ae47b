"""The HTTP/2 client reads a header block it has read before from its own memory only
while the HPACK dynamic table is unchanged: the same bytes can mean other fields once
the server has added an entry.  In-process (the connection fed frames, a list as its
transport): exact HPACK bytes are needed, which a real server does not let us choose."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace

from qactuar.client.exchange import Exchange
from qactuar.client.http2 import END_HEADERS, END_STREAM, FRAME_HEAD, HEADERS, SETTINGS
from qactuar.client.models import Response
from qactuar.client.settings import Limits


class ListTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return FRAME_HEAD.pack(0, len(payload), kind, flags, stream_id) + payload


STATUS_200 = b"\x88"
ADD_X_A_1 = b"\x40\x03x-a\x011"  # literal with incremental indexing: table[62] = x-a: 1
ADD_X_A_2 = b"\x40\x03x-a\x012"  # the same, value 2: now table[62] = x-a: 2
INDEXED_62 = b"\xbe"  # the field at index 62 of the dynamic table


def test_a_block_read_again_follows_the_hpack_table() -> None:
    from qactuar.client.http2 import HTTP2Connection

    async def main() -> list[tuple[int, str | None]]:
        loop = asyncio.get_running_loop()
        pool = SimpleNamespace(loop=loop, waiters=deque(), discard=lambda _c: None,
                               slot_freed=lambda _c: None)
        connection = HTTP2Connection(pool, Limits())
        connection.connection_made(ListTransport())
        connection.data_received(frame(SETTINGS, 0, 0, b""))
        await connection.ready()
        answers = []
        for block in (ADD_X_A_1, INDEXED_62, INDEXED_62, ADD_X_A_2, INDEXED_62, INDEXED_62):
            exchange = Exchange(Response(), loop.create_future(), False, None, False)
            stream_id = connection._open_stream(exchange)
            connection.data_received(frame(HEADERS, END_HEADERS | END_STREAM, stream_id,
                                           STATUS_200 + block))
            response = await exchange.future
            answers.append((response.status_code, response.headers.get("x-a")))
        return answers

    answers = asyncio.run(main())
    assert answers == [(200, "1"), (200, "1"), (200, "1"), (200, "2"), (200, "2"), (200, "2")]

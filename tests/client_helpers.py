"""Shared pieces of the client's tests: an event loop runner, servers, raw-socket peers.

`run` drives a coroutine on uvloop (what the client is built for).  `RawServer`
is a tiny asyncio TCP server in the test's own loop whose handler writes exact
bytes, for the malformed, stalling and resetting peers real servers never are.
The fixtures start one real Qactuar server per test module.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop

from conftest import ServerProcess


def run(coroutine: Awaitable[Any], timeout: float = 30) -> Any:
    """Run `coroutine` to its end on a fresh uvloop loop, failing after `timeout` seconds.

    Anything the loop would log (a future's exception never retrieved, a callback that
    raised) fails the test: the client must not leave errors behind for users to see.
    """
    loop_errors: list[dict[str, Any]] = []

    async def bounded() -> Any:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: loop_errors.append(context))
        async with asyncio.timeout(timeout):
            result = await coroutine
        gc.collect()  # unretrieved exceptions are reported when their futures are freed
        await asyncio.sleep(0)
        return result

    result = uvloop.run(bounded())
    # The test's own asyncio.start_server peers, cancelled when the loop ends, are not ours.
    client_errors = [context for context in loop_errors
                     if "StreamReaderProtocol" not in str(context.get("message"))]
    assert not client_errors, f"the event loop reported: {client_errors}"
    return result


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """`async with RawServer(handler) as server`: server.url, server.connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """One request head from a client (up to the blank line)."""
    return await reader.readuntil(b"\r\n\r\n")


def abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a clean FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def answer_ok_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A well-behaved peer: 200 "ok" to every request on the connection."""
    while True:
        await read_head(reader)
        writer.write(OK_RESPONSE)


@pytest.fixture(scope="module")
def client_app_server() -> Iterator[ServerProcess]:
    """A Qactuar server running tests/apps/client_app.py (HTTP/1.1 and h2c)."""
    server = ServerProcess(["apps.client_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--http2", "on"])
    yield server
    server.stop()

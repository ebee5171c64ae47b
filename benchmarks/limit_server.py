"""The "limit": a bare uvloop protocol that answers every request with fixed bytes.

It parses nothing beyond finding the end of each request head (`\\r\\n\\r\\n`),
so it sets the ceiling an ASGI server on this machine can approach. It supports
keep-alive without pipelining and requests without a body only; it must never
grow into a real server.

    python -m benchmarks.limit_server --port 8000 --body-size 13
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop


def fixed_response(body: bytes) -> bytes:
    """The one response the limit server sends, head and body in one buffer."""
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return head + body


class FixedReplyProtocol(asyncio.Protocol):
    """Write the fixed response once per request head received."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.pending + data if self.pending else data
        answers = buffer.count(b"\r\n\r\n")
        if answers:
            self.transport.write(self.response * answers)  # type: ignore[union-attr]
            self.pending = buffer[buffer.rfind(b"\r\n\r\n") + 4:]
        else:
            self.pending = buffer


async def serve(host: str, port: int, body: bytes) -> None:
    loop = asyncio.get_running_loop()
    response = fixed_response(body)
    server = await loop.create_server(lambda: FixedReplyProtocol(response), host, port,
                                      backlog=2048)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--body-size", type=int, default=13,
                        help="13 answers 'Hello, world!'; any other size answers that many 'x'")
    args = parser.parse_args()
    body = b"Hello, world!" if args.body_size == 13 else b"x" * args.body_size
    uvloop.run(serve(args.host, args.port, body))


if __name__ == "__main__":
    main()

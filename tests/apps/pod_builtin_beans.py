"""Subclasses of the built-in beans for tests/test_pod_builtins.py."""

from __future__ import annotations

import asyncio
from typing import Any

from qactuar.pod.builtins import pcflow, simple, tcp_server


class Shout(tcp_server.Server):
    async def on_start(self) -> None:
        self.connections = 0

    async def on_connect(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        line = await reader.readline()
        writer.write(line.upper() + f"{self.config.greeting} #{self.connections}\n".encode())
        await writer.drain()
        writer.close()

    async def on_signal(self, sig: str) -> None:
        print("BEAN shout got", sig, flush=True)

    async def on_cleanup(self) -> None:
        print("BEAN shout cleaned up after", self.connections, "connection(s)", flush=True)


class ReverseProtocol(asyncio.Protocol):
    """Low-level mode: the adapter sets the class attribute `server`."""

    server: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.strip()[::-1] + b" via " + type(self.server).__name__.encode()
                             + b"\n")
        self.transport.close()


class Numbers(pcflow.Server):
    async def produce(self, count: int = 5, **kwargs: Any) -> Any:
        for number in range(count):
            yield number

    async def consume(self, obj: int, **kwargs: Any) -> None:
        if obj == 2:
            raise ValueError("two is bad")
        print("BEAN consumed", obj, flush=True)

    def cleanup(self, **kwargs: Any) -> None:
        print("BEAN numbers done", flush=True)


class Failing(simple.Server):
    async def startup(self, **kwargs: Any) -> None:
        print("BEAN failing startup", flush=True)

    async def run(self, **kwargs: Any) -> None:
        raise RuntimeError("run failed")

    def cleanup(self, **kwargs: Any) -> None:
        print("BEAN failing cleanup ran", flush=True)

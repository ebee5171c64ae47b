"""`TCPServerAdapter`: a TCP server as a bean, event-driven or with an asyncio.Protocol.

Keyword arguments: `host` (127.0.0.1), `port` (9399; 0 picks one, logged),
`backlog` (100), `limit` (the StreamReader buffer), `server` (a `Server`
subclass or its dotted path) and `protocol` (an `asyncio.Protocol` subclass
or its dotted path: then connections go to it instead of `on_connect`, and
the server instance is its class attribute `server`).  Other keyword
arguments stay in the server's `config`.  SIGINT/SIGTERM call
`on_signal(sig)`, then `on_stop()`, close the listener and `on_cleanup()`.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

from qactuar.config import ConfigError
from qactuar.logs import server_logger
from qactuar.pod.bean import import_core
from qactuar.pod.context import BeanContext

STOP_SIGNALS = ("SIGINT", "SIGTERM")


class Server:
    """Override the hooks; `on_connect` serves one connection."""

    def __init__(self, context: BeanContext, config: Any) -> None:
        self.context = context
        self.config = config

    async def on_signal(self, sig: str) -> None: ...
    async def on_connect(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None: ...
    async def on_setup(self) -> None: ...
    async def on_start(self) -> None: ...
    async def on_stop(self) -> None: ...
    async def on_cleanup(self) -> None: ...


def _class(value: Any, base: type, key: str) -> type:
    cls = import_core(value) if isinstance(value, str) else value
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"TCPServerAdapter {key} = {value!r}: expected a subclass of "
                          f"{base.__module__}.{base.__qualname__}")
    return cls


class TCPServerAdapter:
    """The bean: listen, hand connections to `server` (or `protocol`), stop on a signal."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.server: Server | None = None
        self.listener: asyncio.Server | None = None

    async def __call__(self, host: str = "127.0.0.1", port: int = 9399, backlog: int = 100,
                       limit: int = 2 ** 16, server: Any = Server, protocol: Any = None,
                       **extra: Any) -> None:
        config = types.SimpleNamespace(host=host, port=port, backlog=backlog, limit=limit,
                                       **extra)
        server_class = _class(server, Server, "server")
        protocol_class = _class(protocol, asyncio.Protocol, "protocol") if protocol else None
        config.server, config.protocol = server_class, protocol_class
        tcp = self.server = server_class(self.context, config)
        await tcp.on_setup()
        loop = asyncio.get_running_loop()
        if protocol_class is None:
            self.listener = await asyncio.start_server(tcp.on_connect, host, port,
                                                       backlog=backlog, limit=limit)
        else:
            protocol_class.server = tcp  # type: ignore[attr-defined]
            self.listener = await loop.create_server(protocol_class, host, port,
                                                     backlog=backlog)
        address = self.listener.sockets[0].getsockname()
        server_logger.info("TCP server (bean #%d) listening on %s:%d", self.context.id,
                           address[0], address[1])
        stopped = asyncio.Event()
        stopping = asyncio.Lock()

        async def on_stop_signal(keys: list[str], **kwargs: Any) -> None:
            for sig in keys:
                await tcp.on_signal(sig)
            async with stopping:
                if stopped.is_set():
                    return
                try:
                    await tcp.on_stop()
                    assert self.listener is not None
                    self.listener.close()
                finally:
                    stopped.set()

        for sig in STOP_SIGNALS:
            await self.context.add_signal_handler(sig, on_stop_signal)
        try:
            await tcp.on_start()
            self.context.ready()
            await stopped.wait()
            await tcp.on_cleanup()
        finally:
            for sig in STOP_SIGNALS:
                await self.context.remove_signal_handler(sig, on_stop_signal)
            self.listener.close()

"""The `async` model: one process, one event loop, every connection a coroutine.

Also the serving core the other models reuse in each of their processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from qactuar.asgi.lifespan import LifespanFailure
from qactuar.asgi.router import Mount, Router
from qactuar.config import Config, ConfigError
from qactuar.logs import server_logger
from qactuar.protocols.http1 import HTTP1Protocol
from qactuar.server_state import ServerState
from qactuar.sockets import bind_tcp, describe, tls_context

EXIT_STARTUP_FAILED = 3


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise ConfigError("config key LOOP = 'uvloop': uvloop is not installed") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_async_model(config: Config, mounts: list[Mount]) -> int:
    """Bind, serve until SIGINT/SIGTERM, shut down gracefully; return the exit status."""
    new_loop = loop_factory(config.LOOP)
    ssl_context = tls_context(config)
    sockets = bind_tcp(config.HOST, config.PORT)
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(serve(config, mounts, sockets, ssl_context))


async def serve(config: Config, mounts: list[Mount], sockets: list[socket.socket],
                ssl_context: Any = None) -> int:
    loop = asyncio.get_running_loop()
    scheme = "https" if ssl_context else "http"
    state = ServerState(config, Router(mounts), loop, scheme)
    signals = _install_signal_handlers(loop)

    started: list[Mount] = []
    for mount in mounts:
        startup = asyncio.ensure_future(mount.lifespan.startup())
        if not await _finished_before(startup, signals.stop):
            mount.lifespan.cancel()
            server_logger.info("Stopped during application startup")
            await _shut_down_apps(started, config, signals)
            return 0
        try:
            startup.result()
        except LifespanFailure as exc:
            server_logger.error("%s; exiting", exc)
            await _shut_down_apps(started, config, signals)
            return EXIT_STARTUP_FAILED
        started.append(mount)

    loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    servers = []
    for sock in sockets:
        servers.append(await loop.create_server(
            lambda: HTTP1Protocol(state), sock=sock, ssl=ssl_context,
            ssl_handshake_timeout=config.HEADER_TIMEOUT if ssl_context else None))
        server_logger.info("Listening on %s (async model, %s loop, pid %d)",
                           describe(sock, scheme), loop_name, os.getpid())
    await signals.stop.wait()

    server_logger.info("Shutting down: no new connections, waiting up to %ss for %d "
                       "connection(s)", config.SHUTDOWN_TIMEOUT, len(state.connections))
    state.shutting_down = True
    for server in servers:
        server.close()
    for connection in list(state.connections):
        connection.shutdown()
    await _drain(state, config.SHUTDOWN_TIMEOUT, signals)
    await _shut_down_apps(started, config, signals)
    server_logger.info("Stopped")
    return 0


class _Signals:
    """The first SIGINT/SIGTERM sets `stop`; a second one sets `force` too."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            server_logger.warning("%s again: not waiting any longer", name)
            self.force.set()
        else:
            server_logger.info("Received %s", name)
            self.stop.set()


def _install_signal_handlers(loop: asyncio.AbstractEventLoop) -> _Signals:
    signals = _Signals()
    # Only the main thread may take signals; run() in another thread serves
    # until its process ends, as other servers do.
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, signals.received, signum)
    return signals


async def _finished_before(task: asyncio.Future[Any], event: asyncio.Event) -> bool:
    """Wait for `task` unless `event` is set first, in which case cancel it."""
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        return True
    task.cancel()
    return False


async def _shut_down_apps(started: list[Mount], config: Config, signals: _Signals) -> None:
    for mount in reversed(started):
        if signals.force.is_set():
            mount.lifespan.cancel()
        else:
            await mount.lifespan.shutdown(config.SHUTDOWN_TIMEOUT, signals.force)


async def _drain(state: ServerState, timeout: float, signals: _Signals) -> None:
    """Let in-flight requests finish, up to `timeout`; then cut what is left."""
    deadline = time.monotonic() + timeout
    while (state.connections or state.tasks) and not signals.force.is_set():
        if time.monotonic() >= deadline:
            server_logger.warning("Shutdown timeout: closing %d connection(s), cancelling %d "
                                  "task(s)", len(state.connections), len(state.tasks))
            break
        await asyncio.sleep(0.02)
    for connection in list(state.connections):
        if connection.transport is not None:
            connection.transport.abort()
    tasks = list(state.tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1)

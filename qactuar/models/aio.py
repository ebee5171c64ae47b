"""The `async` model: one process, one event loop, every connection a coroutine.

Also the serving core the other models reuse in each of their processes: a
prefork worker is `serve()` on sockets its supervisor bound, a postfork
child is `serve_connection()` on the one connection its parent accepted.
A `ProcessRole` says how such a process differs from the async model.
This module never forks and never binds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qactuar.asgi.lifespan import LifespanFailure
from qactuar.asgi.router import Mount, Router
from qactuar.config import Config, ConfigError
from qactuar.gc_tuning import raise_collector_threshold
from qactuar.logs import server_logger
from qactuar.protocols.handover import ProtocolFactory
from qactuar.proxy_protocol import connection_protocol_factory
from qactuar.server_state import ServerObserver, ServerState
from qactuar.sockets import bind_all, close_all, describe, tls_context

EXIT_STARTUP_FAILED = 3


@dataclass
class ProcessRole:
    """What a serving process of another model does differently from the async model."""

    model: str = "async"
    logger: logging.Logger = server_logger
    lifespan: bool = True  # False where a parent process ran it (postfork children)
    # What the model watches of its server (server_state.ServerObserver), and the
    # protocols a connection is handed over to (protocols/handover.py); None: the defaults.
    observer: ServerObserver | None = None
    protocols: ProtocolFactory | None = None
    # Called once the loop runs, before lifespan startup, with the state and a
    # function that starts a graceful stop (heartbeats, request quotas).
    on_start: Callable[[ServerState, Callable[[], None]], None] | None = None
    on_listening: Callable[[], None] | None = None
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    # QUIC_BIND / UDP_BINDS sockets (udp/binding.py's DatagramBinds) and this process's
    # slot, which picks its lane and names its QUIC connection IDs.
    datagrams: Any = None
    slot: int = 0


ASYNC_ROLE = ProcessRole()
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    sockets = bind_all(config)
    role, admin_sockets = ASYNC_ROLE, []
    datagrams = None
    try:
        if config.QUIC_BIND or config.UDP_BINDS:
            from qactuar.udp.binding import bind_datagrams

            datagrams = bind_datagrams(config)
        if config.ADMIN:  # the admin plane serves in this loop too (qactuar/admin)
            from qactuar.admin.listen import bind_admin
            from qactuar.admin.plane import InProcessPlane

            admin_sockets = bind_admin(config)
            plane = InProcessPlane(config, mounts, sockets, admin_sockets,
                                   "https" if ssl_context else "http")
            role = ProcessRole(on_start=plane.on_start, on_listening=plane.on_listening)
        if datagrams is not None:
            role = dataclasses.replace(role, datagrams=datagrams)
        with asyncio.Runner(loop_factory=new_loop) as runner:
            return runner.run(serve(config, mounts, sockets, ssl_context, role))
    finally:
        close_all(sockets)
        if datagrams is not None:
            datagrams.close()
        if admin_sockets:
            from qactuar.admin.listen import close_admin

            close_admin(admin_sockets)


async def serve(config: Config, mounts: list[Mount], sockets: list[socket.socket],
                ssl_context: Any = None, role: ProcessRole = ASYNC_ROLE) -> int:
    loop = asyncio.get_running_loop()
    signals = install_signal_handlers(loop, role.logger, role.stop_signals)
    # SIGHUP (logrotate, systemd's ExecReload) must not kill a process that cannot reload.
    hangup = (signal.SIGHUP,) if role.model == "async" else ()
    if hangup and threading.current_thread() is threading.main_thread():
        loop.add_signal_handler(signal.SIGHUP, log_sighup_ignored, "async")
    try:
        return await _serve(config, mounts, sockets, ssl_context, role, signals)
    finally:
        retire_signal_handlers(loop, role.stop_signals + hangup)


def log_sighup_ignored(model: str) -> None:
    """SIGHUP in a model that does not reload code: say so, and serve on."""
    server_logger.warning("Received SIGHUP: ignored, the %s model does not reload code "
                          "(the prefork model does; restart the server to load new code)",
                          model)


async def _serve(config: Config, mounts: list[Mount], sockets: list[socket.socket],
                 ssl_context: Any, role: ProcessRole, signals: Signals) -> int:
    loop = asyncio.get_running_loop()
    scheme = "https" if ssl_context else "http"
    state = ServerState(config, Router(mounts), loop, scheme, role.observer, role.protocols)
    servers: list[asyncio.Server] = []

    def stop_now() -> None:
        # Stop accepting at once, not an iteration later: a worker that has
        # reached its request quota must not take one more connection.
        signals.stop.set()
        for server in servers:
            server.close()

    if role.on_start is not None:
        role.on_start(state, stop_now)

    # The beans of this process (qactuar/pod): they start after lifespan startup,
    # and the sockets listen once the gate beans are ready.
    pod = None
    if config.BEANS or config.BLOCKED_LOOP_THRESHOLD:  # else there is nothing to run
        from qactuar.pod.serving import process_pod  # imported only when configured

        pod = process_pod(config, role.model, role.lifespan, role.logger)
    if pod is not None:
        pod.attach(mounts)
    started, status = await start_apps(mounts if role.lifespan else [], config, signals,
                                       role.logger)
    if status is None and pod is not None:
        status = await pod.start(stop_now, signals.stop)
        if status is not None:
            await pod.stop(signals.force)
            await shut_down_apps(started, config, signals)
    datagrams = None
    if status is None and role.datagrams is not None:
        from qactuar.udp.serving import start_datagrams

        datagrams, problem = await start_datagrams(state, role.datagrams, role.slot, mounts,
                                                   role.logger)
        if problem is not None:
            role.logger.error("%s; exiting", problem)
            datagrams.stop_receiving()
            datagrams.close()
            if pod is not None:
                await pod.stop(signals.force)
            await shut_down_apps(started, config, signals)
            return EXIT_STARTUP_FAILED
    if status is not None:
        return status

    # What start-up made (modules, the app, its lifespan state) lives as long as the
    # process: moved out of the collector's sight, later collections walk only what
    # requests make, and a prefork worker's collections leave the pages it shares with
    # the supervisor untouched.  (A gc.collect() here took 2-3 ms of every start and
    # found nothing to free in the benchmark apps.)
    gc.freeze()
    raise_collector_threshold(config.GC_THRESHOLD, role.logger)
    loop_name = loop_label(loop)
    new_connection = connection_protocol_factory(state)  # HTTP/1.1, or a PROXY header first
    for sock in sockets:
        # backlog: create_server calls listen() again, by default with 100.
        servers.append(await loop.create_server(
            new_connection, sock=sock, backlog=config.BACKLOG, ssl=ssl_context,
            ssl_handshake_timeout=config.SSL_HANDSHAKE_TIMEOUT if ssl_context else None))
        role.logger.info("Listening on %s (%s model, %s loop, pid %d)",
                         describe(sock, scheme), role.model, loop_name, os.getpid())
    if role.on_listening is not None:
        role.on_listening()
    if not signals.stop.is_set():
        await signals.stop.wait()

    role.logger.info("Shutting down: no new connections, waiting up to %ss for %d "
                     "connection(s)", config.SHUTDOWN_TIMEOUT, len(state.connections))
    state.shutting_down = True
    for server in servers:
        server.close()
    if datagrams is not None:
        datagrams.stop_receiving()  # HTTP/3 gets its GOAWAY as a connection, below
    await stop_connections(state, config, signals)
    if datagrams is not None:
        datagrams.close()
    if pod is not None:
        await pod.stop(signals.force)
    await shut_down_apps(started, config, signals)
    role.logger.info("Stopped")
    return pod.exit_status if pod is not None else 0


def loop_label(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def stop_connections(state: ServerState, config: Config, signals: Signals) -> None:
    for connection in list(state.connections):
        connection.shutdown()
    await _drain(state, config.SHUTDOWN_TIMEOUT, signals)


class Signals:
    """The first SIGINT/SIGTERM sets `stop`; a second one sets `force` too."""

    def __init__(self, logger: logging.Logger) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.logger = logger

    def received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            self.logger.warning("%s again: not waiting any longer", name)
            self.force.set()
        else:
            self.logger.info("Received %s", name)
            self.stop.set()


def install_signal_handlers(loop: asyncio.AbstractEventLoop, logger: logging.Logger,
                            signums: tuple[int, ...] = STOP_SIGNALS) -> Signals:
    signals = Signals(logger)
    # Only the main thread may take signals; run() in another thread serves
    # until its process ends, as other servers do.
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            loop.add_signal_handler(signum, signals.received, signum)
    return signals


def retire_signal_handlers(loop: asyncio.AbstractEventLoop,
                           signums: tuple[int, ...] = STOP_SIGNALS) -> None:
    """Ignore stop signals once serving is over.

    Closing the loop would put back the default action, so a SIGTERM sent in
    the last moments before exit (an operator or supervisor repeating itself)
    would kill a process that was about to exit 0.  The signals are blocked
    while the handlers change hands so none slips through in between.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, set(signums))
    try:
        for signum in signums:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


async def start_apps(mounts: list[Mount], config: Config, signals: Signals,
                     logger: logging.Logger) -> tuple[list[Mount], int | None]:
    """Run every app's lifespan startup; return the started apps and, if the
    process must not serve, its exit status (0 when a signal stopped it)."""
    started: list[Mount] = []
    for mount in mounts:
        startup = asyncio.ensure_future(mount.lifespan.startup())
        if not await _finished_before(startup, signals.stop):
            mount.lifespan.cancel()
            logger.info("Stopped during application startup")
            await shut_down_apps(started, config, signals)
            return started, 0
        try:
            startup.result()
        except LifespanFailure as exc:
            logger.error("%s; exiting", exc)
            await shut_down_apps(started, config, signals)
            return started, EXIT_STARTUP_FAILED
        started.append(mount)
    return started, None


async def _finished_before(task: asyncio.Future[Any], event: asyncio.Event) -> bool:
    """Wait for `task` unless `event` is set first, in which case cancel it."""
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        return True
    task.cancel()
    return False


async def shut_down_apps(started: list[Mount], config: Config, signals: Signals) -> None:
    for mount in reversed(started):
        if signals.force.is_set():
            mount.lifespan.cancel()
        else:
            await mount.lifespan.shutdown(config.SHUTDOWN_TIMEOUT, signals.force)


async def _drain(state: ServerState, timeout: float, signals: Signals) -> None:
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

"""The `postfork` model: the parent accepts; a child forked per connection serves it.

The parent runs every app's lifespan startup once, in an event loop it then
leaves idle (its `state` is inherited by every child), and accepts in a
plain selector loop, so each child starts a fresh event loop of its own.
A child serves its one connection (keep-alive included) with the shared
HTTP/1.1 code and exits when it closes.  The parent keeps its copy of each
connection so that, when a child crashes or is killed for overrunning
REQUEST_TIMEOUT before it answered, the client still gets a 500 or 504.
At most MAX_PROCESSES children live at once; beyond that the parent stops
accepting and connections wait in the listen backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from qactuar.admin.listen import bind_with_admin
from qactuar.asgi.router import Mount, Router
from qactuar.config import Config, ConfigError
from qactuar.logs import child_logger, server_logger
from qactuar.models.aio import (
    ProcessRole,
    install_signal_handlers,
    log_sighup_ignored,
    loop_factory,
    loop_label,
    retire_signal_handlers,
    shut_down_apps,
    start_apps,
    stop_connections,
)
from qactuar.pod.placement import EXIT_BEAN_FAILED, parent_pod

# Imported once, in the parent, what a child would otherwise import for its connection
# (the async model imports them when first used).
from qactuar.protocols import http1 as _http1  # noqa: F401
from qactuar.protocols import websocket as _websocket  # noqa: F401
from qactuar.protocols.handover import ProtocolFactory
from qactuar.protocols.http2 import H2Protocol
from qactuar.proxy_protocol import connection_protocol_factory
from qactuar.server_state import ServerObserver, ServerState
from qactuar.sockets import close_all, describe, tls_context
from qactuar.supervisor import (
    CHILD_STOP_SIGNALS,
    REQUEST_STARTED,
    RESPONDED,
    SPEAKS_HTTP2,
    STOP_NOW,
    Child,
    SignalPipe,
    Slots,
    describe_exit,
    exited_cleanly,
    fork_child,
    heartbeat,
    kill_overdue,
    new_selector,
    next_deadline,
    reap,
    selector_timeout,
    signal_child,
)

# How long past REQUEST_TIMEOUT a child that has not answered may live: its
# own timer answers 504 at REQUEST_TIMEOUT unless the app blocks its loop.
TIMEOUT_GRACE = 1.0
KILL_GRACE = 2.0


def _error_response(status: int, reason: str) -> bytes:
    body = f"{reason}\n".encode()
    return (f"HTTP/1.1 {status} {reason.split(':')[0]}\r\ncontent-type: text/plain; "
            f"charset=utf-8\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            ).encode() + body


GATEWAY_TIMEOUT = _error_response(504, "Gateway Timeout: the application did not answer in time")
CRASHED = _error_response(500, "Internal Server Error: the process serving this request ended")


def run_postfork_model(config: Config, mounts: list[Mount]) -> int:
    if config.QUIC_BIND or config.UDP_BINDS:
        # A QUIC connection or a UDP client has no socket of its own to hand to a
        # child: see docs/http3-udp.md for why postfork does not serve them.
        raise ConfigError("QUIC_BIND and UDP_BINDS are served by the async and prefork "
                          "models, not postfork")
    new_loop = loop_factory(config.LOOP)
    ssl_context = tls_context(config)
    sockets, admin_sockets = bind_with_admin(config)
    try:
        return PostforkParent(config, mounts, sockets, ssl_context, new_loop,
                              admin_sockets).run()
    finally:
        close_all(sockets)


class _Connection:
    """The parent's record of one child's connection."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer


class PostforkParent:
    def __init__(self, config: Config, mounts: list[Mount], sockets: list[socket.socket],
                 ssl_context: Any, new_loop: Callable[[], asyncio.AbstractEventLoop],
                 admin_sockets: list[socket.socket] | None = None) -> None:
        self.config = config
        self.mounts = mounts
        self.sockets = sockets
        self.ssl_context = ssl_context
        self.new_loop = new_loop
        self.slots = Slots(config.MAX_PROCESSES)
        self.children: dict[int, Child] = {}
        self.accepting = False
        self.stopping = False
        self.pod: Any = None  # the parent's beans (qactuar.pod.placement.ThreadPod)
        self.forced = False
        self.interval = min(config.CHECK_PROCESS_INTERVAL, config.WORKER_TIMEOUT,
                            config.REQUEST_TIMEOUT or config.CHECK_PROCESS_INTERVAL) / 2
        self.admin_sockets = admin_sockets or []
        self.admin: Any = None  # the admin plane (qactuar/admin) when ADMIN is on

    def run(self) -> int:
        loop = self.new_loop()
        self.loop_name = loop_label(loop)
        asyncio.set_event_loop(loop)
        try:
            started, status = self._start_apps(loop)
            if status is not None:
                self.signals.close()
                return status
            # The beans run in the parent (a thread of their own: this loop stays idle).
            self.pod = parent_pod(self.config, server_logger)
            if self.pod is None or self.pod.start(self.signals) is None:
                self._accept_loop()
            else:  # a gate bean failed, or a stop signal came before it was ready
                self.signals.close()
            if self.pod is not None:
                self.pod.stop()
            self._shut_down_apps(loop, started)
            server_logger.info("Stopped")
            return EXIT_BEAN_FAILED if self.pod is not None and self.pod.failed else 0
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    # -- lifespan, in the parent's (then idle) event loop -------------------------------

    def _start_apps(self, loop: asyncio.AbstractEventLoop) -> tuple[list[Mount], int | None]:
        signals = install_signal_handlers(loop, server_logger)
        started = loop.run_until_complete(
            start_apps(self.mounts, self.config, signals, server_logger))
        # From the event loop's signal handling to the accept loop's, with the
        # stop signals held meanwhile so none finds the default (fatal) action.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            self.signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                       signal.SIGCHLD))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return started

    def _shut_down_apps(self, loop: asyncio.AbstractEventLoop, started: list[Mount]) -> None:
        signals = install_signal_handlers(loop, server_logger)
        signals.stop.set()  # a signal now means: skip the waiting
        loop.run_until_complete(shut_down_apps(started, self.config, signals))
        retire_signal_handlers(loop)

    # -- accepting and supervising ------------------------------------------------------

    def _accept_loop(self) -> None:
        # Everything the parent holds now is inherited by every child: keep it
        # out of the collector, so a child's collection does not touch (and so
        # copy, page by page) the whole inherited heap.
        if self.admin_sockets:
            from qactuar.admin.postfork_plane import PostforkPlane

            self.admin = PostforkPlane(self, self.config, self.mounts, self.sockets,
                                       self.admin_sockets,
                                       "https" if self.ssl_context else "http")
        gc.freeze()
        self.selector = new_selector(self.signals)
        self._set_accepting(True)
        scheme = "https" if self.ssl_context else "http"
        for sock in self.sockets:
            server_logger.info("Listening on %s (postfork model, %s loop in each child, pid %d, "
                               "up to %d children)", describe(sock, scheme), self.loop_name,
                               os.getpid(), self.config.MAX_PROCESSES)
        next_check = time.monotonic() + self.interval
        try:
            while not (self.stopping and not self.children):
                deadline = next_deadline(self.children.values(), next_check)
                for key, _ in self._select(selector_timeout(deadline, self.interval)):
                    if key.fileobj is not self.signals and self.accepting:
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                for signum in self.signals.read():
                    self._on_signal(signum)
                if self.pod is not None and self.pod.failed and not self.stopping:
                    self._on_signal(signal.SIGTERM)  # a bean failed the pod
                for pid, status in reap():
                    self._on_exit(pid, status)
                if time.monotonic() >= next_check:
                    self._check_children()
                    next_check = time.monotonic() + self.interval
                kill_overdue(self.children.values())
                self._set_accepting(not self.stopping
                                    and len(self.children) < self.config.MAX_PROCESSES)
        finally:
            if self.admin is not None:
                self.admin.driver.close()
            self.selector.close()
            self.signals.close()

    def _select(self, timeout: float) -> list[Any]:
        if self.admin is not None:  # the admin plane serves while the parent waits
            fds = [key.fd for key in self.selector.get_map().values()]
            self.admin.driver.wait(fds, timeout)
            timeout = 0
        return self.selector.select(timeout)

    def _set_accepting(self, accepting: bool) -> None:
        """Watch the listening sockets only while a child may be started."""
        if accepting == self.accepting or (accepting and self.stopping):
            return
        self.accepting = accepting
        for sock in self.sockets:
            if accepting:
                self.selector.register(sock, 1)  # selectors.EVENT_READ
            else:
                self.selector.unregister(sock)

    def _accept(self, listener: socket.socket) -> None:
        while len(self.children) < self.config.MAX_PROCESSES:
            try:
                conn, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again later
                server_logger.error("accept failed: %s", exc.strerror or exc)
                return
            peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "unix"
            slot = self.slots.take()
            try:
                pid = fork_child(lambda c=conn, s=slot: self._run_child(c, s),
                                 self._drop_parent_resources)
            except OSError as exc:
                server_logger.error("cannot fork a child for %s: %s", peer, exc.strerror)
                self.slots.release(slot)
                conn.close()
                return
            self.children[pid] = Child(pid, slot, extra=_Connection(conn, peer))

    def _drop_parent_resources(self) -> None:
        if self.admin is not None:
            self.admin.driver.close_in_child()
        self.selector.close()
        self.signals.close()
        for sock in self.sockets:
            sock.close()
        for child in self.children.values():
            child.extra.sock.close()

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            log_sighup_ignored("postfork")
            return
        if self.stopping:
            if not self.forced:
                self.forced = True
                server_logger.warning("%s again: children stop without waiting", name)
                for child in self.children.values():
                    signal_child(child, STOP_NOW)
            return
        self.stopping = True
        server_logger.info("Received %s", name)
        server_logger.info("Shutting down: no new connections, waiting up to %ss for %d "
                           "child process(es)", self.config.SHUTDOWN_TIMEOUT,
                           len(self.children))
        self._set_accepting(False)
        close_all(self.sockets)
        for child in self.children.values():
            child.stopping = True
            signal_child(child, signal.SIGTERM, kill_after=self.config.SHUTDOWN_TIMEOUT + 1)

    def _check_children(self) -> None:
        """Kill children that overran REQUEST_TIMEOUT or whose loop hung."""
        now = time.monotonic()
        request_timeout = self.config.REQUEST_TIMEOUT
        for child in self.children.values():
            if child.reason:
                continue
            started = self.slots.get(child.slot, REQUEST_STARTED)
            answered = self.slots.get(child.slot, RESPONDED)
            if (request_timeout and started and not answered
                    and now - started > request_timeout + TIMEOUT_GRACE):
                child.reason = "request timeout"
                server_logger.warning("Child pid %d (client %s) did not answer within "
                                      "REQUEST_TIMEOUT %gs: killing it", child.pid,
                                      child.extra.peer, request_timeout)
                signal_child(child, signal.SIGKILL)
            elif self.slots.silence(child.slot) > self.config.WORKER_TIMEOUT:
                child.reason = "hung"
                server_logger.error("Child pid %d (client %s) is hung: its event loop has not "
                                    "run for %.1fs (WORKER_TIMEOUT %gs); killing it",
                                    child.pid, child.extra.peer,
                                    self.slots.silence(child.slot), self.config.WORKER_TIMEOUT)
                signal_child(child, signal.SIGABRT, kill_after=KILL_GRACE)

    def _on_exit(self, pid: int, status: int) -> None:
        child = self.children.pop(pid, None)
        if child is None:
            return
        connection: _Connection = child.extra
        if self.admin is not None:
            self.admin.child_exited(pid, describe_exit(status),
                                    exited_cleanly(status) and not child.reason)
        in_request = bool(self.slots.get(child.slot, REQUEST_STARTED))
        answered = bool(self.slots.get(child.slot, RESPONDED))
        self.slots.release(child.slot)
        reply = b""
        if not exited_cleanly(status) or child.reason:
            if (in_request and not answered and self.ssl_context is None
                    and not self.slots.get(child.slot, SPEAKS_HTTP2)):
                reply = GATEWAY_TIMEOUT if child.reason == "request timeout" else CRASHED
            if child.reason != "request timeout":
                # Ended by the SIGTERM a shutdown sent it (before it could install
                # its own handler): expected, not an error.
                stopped = (self.stopping and os.WIFSIGNALED(status)
                           and os.WTERMSIG(status) == signal.SIGTERM)
                server_logger.log(logging.INFO if stopped else logging.ERROR,
                                  "Child pid %d (client %s) %s%s", pid, connection.peer,
                                  describe_exit(status),
                                  f"; answered {reply[9:12].decode()}" if reply else "")
        if reply:
            with contextlib.suppress(OSError):
                connection.sock.send(reply)
        connection.sock.close()

    # -- inside a child ------------------------------------------------------------------

    def _run_child(self, conn: socket.socket, slot: int) -> int:
        parent = os.getppid()
        slots = self.slots
        interval = self.interval
        tasks: set[asyncio.Task[None]] = set()

        def on_start(state: ServerState, stop: Callable[[], None]) -> None:
            if self.admin is not None:
                self.admin.child_started(state)
            tasks.add(state.loop.create_task(heartbeat(slots, slot, interval, parent, stop)))

        role = ProcessRole(model="postfork", logger=child_logger, lifespan=False,
                           observer=ChildObserver(slots, slot),
                           protocols=ChildProtocols(slots, slot),
                           on_start=on_start, stop_signals=CHILD_STOP_SIGNALS)
        with asyncio.Runner(loop_factory=self.new_loop) as runner:
            runner.run(serve_connection(self.config, self.mounts, conn, self.ssl_context, role))
        if self.admin is not None:
            self.admin.child_exiting()
        return 0


class ChildObserver(ServerObserver):
    """What a postfork child tells its parent, through its slot, of its one connection.

    A request started (the parent will answer 500/504 for it if the child
    dies), its response head written (the parent then only closes), the
    request over; and the connection closed, whatever protocol it ended in
    (the child then exits).
    """

    def __init__(self, slots: Slots, slot: int) -> None:
        self.slots = slots
        self.slot = slot
        self.closed = asyncio.Event()

    def request_started(self) -> None:
        self.slots.set(self.slot, RESPONDED, 0.0)
        self.slots.set(self.slot, REQUEST_STARTED, time.monotonic())

    def response_started(self) -> None:
        self.slots.set(self.slot, RESPONDED, 1.0)

    def request_finished(self) -> None:
        self.slots.set(self.slot, REQUEST_STARTED, 0.0)

    def connection_closed(self) -> None:
        self.closed.set()


class ChildProtocols(ProtocolFactory):
    """A postfork child's hand-overs: a connection that turns to HTTP/2 is marked in the
    slot, since HTTP/1.1 bytes from the parent would be garbage to that client (if the
    child dies, the parent only closes the connection)."""

    def __init__(self, slots: Slots, slot: int) -> None:
        self.slots = slots
        self.slot = slot

    def http2(self, state: ServerState, transport: asyncio.Transport,
              client: tuple[str, int] | None, server: tuple[str, int] | None,
              tls: dict[str, Any] | None) -> H2Protocol:
        self.slots.set(self.slot, SPEAKS_HTTP2, 1.0)
        return super().http2(state, transport, client, server, tls)


async def serve_connection(config: Config, mounts: list[Mount], conn: socket.socket,
                           ssl_context: Any, role: ProcessRole) -> None:
    """Serve one accepted connection until it closes; SIGTERM lets its current
    request finish (up to SHUTDOWN_TIMEOUT) and then closes it."""
    loop = asyncio.get_running_loop()
    scheme = "https" if ssl_context else "http"
    observer = role.observer
    assert isinstance(observer, ChildObserver)
    state = ServerState(config, Router(mounts), loop, scheme, observer, role.protocols)
    signals = install_signal_handlers(loop, role.logger, role.stop_signals)
    if role.on_start is not None:
        role.on_start(state, signals.stop.set)
    try:
        await loop.connect_accepted_socket(
            connection_protocol_factory(state), sock=conn, ssl=ssl_context,
            ssl_handshake_timeout=config.SSL_HANDSHAKE_TIMEOUT if ssl_context else None)
    except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
        # The client's mistake (plain HTTP on a TLS port, a stalled handshake): one line.
        role.logger.info("TLS handshake failed: %s", str(exc).splitlines()[0] if str(exc)
                         else type(exc).__name__)
        return
    closed = asyncio.ensure_future(observer.closed.wait())
    stop = asyncio.ensure_future(signals.stop.wait())
    await asyncio.wait({closed, stop}, return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    stop.cancel()
    if observer.closed.is_set():
        # The usual end: the client or keep-alive closed the connection.  An app
        # still running (its client left early) gets SHUTDOWN_TIMEOUT to finish.
        if state.tasks:
            await asyncio.wait(set(state.tasks), timeout=config.SHUTDOWN_TIMEOUT)
        return
    state.shutting_down = True
    await stop_connections(state, config, signals)


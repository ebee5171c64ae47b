"""One load run in one process: opens the connections, decides what each sends, ends on time.

`Run` is what the engines call back: `take` (may I send another request, and
which start time does it carry), `answered` / `errored` (one request is over;
these three are its compiled base's, `flow.Flow`), `connected`, `lost`.  In
the closed model (`-n` or `-D` without `--rate`) a connection sends its next
request as soon as an answer frees room; with `--rate` the `RateScheduler`
decides.  A one-second tick closes the
per-second series, prints the progress line and fails connections that have
waited longer than the timeout.  The run ends when `-n` requests are over, or
at the end of `-D` (requests still unanswered a moment later count as
`unfinished`), or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import ssl
import sys
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from qactuar.load.flow import Flow
from qactuar.load.http1_engine import H1Connection
from qactuar.load.options import LoadOptions
from qactuar.load.rate import RateScheduler
from qactuar.load.stats import RunStats
from qactuar.load.targets import Target, h1_request, h2_header_block

DRAIN_GRACE_S = 1.0  # after -D, how long answers still in flight may take
RETRY_DELAY_S = 0.1  # before reconnecting after a failed connect


def client_tls_context(alpn: list[str]) -> ssl.SSLContext:
    """TLS without certificate checks (as h2load and wrk: a load tool measures, it does not
    vouch for the server), offering `alpn`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def deliver_stop_signals(deliver: bool) -> None:
    """Let SIGINT/SIGTERM through (while the run's handlers are there to stop it) or hold
    them: a worker forked before its loop is ready, or a second Ctrl-C after the run, must
    not become a KeyboardInterrupt that loses the results."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK if deliver else signal.SIG_BLOCK,
                               set(STOP_SIGNALS))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run(Flow):
    """The connections and bookkeeping of one process's share of a load run (the
    per-request calls `take`, `answered`, `errored` are `Flow`'s)."""

    def __init__(self, options: LoadOptions, connections: int, requests: int | None,
                 rate: float | None, protocol: str,
                 progress: Callable[[RunStats, int], None] | None = None) -> None:
        self.options = options
        self.loop = asyncio.get_running_loop()
        self.stats = RunStats(keep_rows=options.csv_file is not None)
        self.connection_count = connections
        self.remaining = -1 if requests is None else requests
        self.protocol = protocol  # "h1", "h2" or "ws"
        self.in_flight = 0
        self.stopping = False
        self.interrupted = False
        self.connections: list[Any] = []
        self.ever_connected = False
        self.failed_connects = 0
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.progress = progress
        self.timeout_ns = int(options.timeout * 1e9)
        self.scheduler = RateScheduler(self, rate, self.loop) if rate else None
        self.handles: list[asyncio.TimerHandle] = []
        self.second = 0
        self.start_ns = 0
        self.end_ns = 0
        self.targets = self._spread_targets(options.targets)
        self.tls_contexts: dict[str, ssl.SSLContext] = {}
        method = options.request_method()
        self.head_only = method == "HEAD"
        self.requests = {target: (h1_request(target, options.headers, options.body, method)
                                  if protocol == "h1" else
                                  h2_header_block(target, options.headers, options.body,
                                                  method))
                         for target in set(self.targets)} if protocol != "ws" else {}
        self.rotations = self._rotations(options, protocol)

    @staticmethod
    def _rotations(options: LoadOptions, protocol: str) -> dict[tuple[str, str, int], Any]:
        """The target file's requests, pre-built, by origin (none without --targets)."""
        from qactuar.load.rotation import Rotation

        built: dict[tuple[str, str, int], list[Any]] = {}
        for entry in options.file_requests:
            own = {name.lower() for name, _ in entry.headers}
            headers = [(n, v) for n, v in options.headers if n.lower() not in own]
            headers += list(entry.headers)
            built.setdefault(entry.target.origin, []).append(
                h1_request(entry.target, headers, entry.body, entry.method) if protocol == "h1"
                else (h2_header_block(entry.target, headers, entry.body, entry.method),
                      entry.body))
        return {origin: Rotation(requests) for origin, requests in built.items()}

    @staticmethod
    def _spread_targets(targets: list[Target]) -> list[Target]:
        """Connections go to the URLs in turn, each as often as its weight says."""
        spread: list[Target] = []
        for target in targets:
            spread += [target] * target.weight
        return spread

    # the engines' calls

    def has_room(self, connection: Any) -> None:
        """`connection` could send more than it was given."""
        if self.scheduler is not None and not self.stopping:
            self.scheduler.has_room(connection)

    def connected(self, connection: Any, connect_ns: int) -> None:
        self.ever_connected = True
        self.stats.connect_ns.append(connect_ns)

    def first_byte(self, elapsed_ns: int) -> None:
        self.stats.first_byte_ns.append(elapsed_ns)

    def lost(self, connection: Any) -> None:
        with contextlib.suppress(ValueError):
            self.connections.remove(connection)
        self.count_connection_rate(connection, monotonic_ns())
        if self.stopping or self.finished.done():
            if not self.connections and self.in_flight == 0:
                self.loop.call_soon(self.end)
            return
        if self.remaining != 0:
            self.loop.call_soon(self.open_connection, len(self.connections))
        elif self.in_flight == 0:
            self.loop.call_soon(self.end)

    def count_connection_rate(self, connection: Any, now: int) -> None:
        """The requests per second one connection answered while it lived."""
        if connection.connected_ns and self.stats.measure_from_ns <= connection.connected_ns:
            elapsed = (now - connection.connected_ns) / 1e9
            if elapsed > 0:
                self.stats.connections_per_worker.append(connection.answered / elapsed)

    # opening connections

    def open_connection(self, slot: int, delay: float = 0.0) -> None:
        task = self.loop.create_task(self._open(slot, delay))
        task.add_done_callback(_quiet)

    async def _open(self, slot: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.stopping or self.finished.done():
            return
        target = self.targets[slot % len(self.targets)]
        connection = self.make_connection(target)
        self.connections.append(connection)
        context = self.tls_context() if target.tls else None
        try:
            await asyncio.wait_for(self.loop.create_connection(
                lambda: connection, target.host, target.port, ssl=context,
                server_hostname=target.host if context else None), self.options.timeout)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.connect_failed(connection, slot, exc)

    def make_connection(self, target: Target) -> Any:
        rotation = self.rotations.get(target.origin)
        if rotation is not None:
            from qactuar.load.rotation import RotatingH1Connection, RotatingH2Connection

            if self.protocol == "h1":
                return RotatingH1Connection(self, rotation, self.options.streams)
            return RotatingH2Connection(self, rotation, self.options.streams)
        if self.protocol == "h1":
            return H1Connection(self, self.requests[target], self.options.streams,
                                self.head_only)
        if self.protocol == "h2":
            from qactuar.load.http2_engine import H2Connection

            return H2Connection(self, self.requests[target], self.options.body,
                                self.options.streams)
        from qactuar.load.ws_engine import WSConnection

        return WSConnection(self, target, self.options)

    def tls_context(self) -> ssl.SSLContext:
        context = self.tls_contexts.get(self.protocol)
        if context is None:
            alpn = {"h1": ["http/1.1"], "h2": ["h2"], "ws": ["http/1.1"]}[self.protocol]
            context = self.tls_contexts[self.protocol] = client_tls_context(alpn)
        return context

    def connect_failed(self, connection: Any, slot: int, exc: BaseException) -> None:
        """A connection could not be opened: one errored request of kind `connect`."""
        connection.closed = True
        with contextlib.suppress(ValueError):
            self.connections.remove(connection)
        if self.stopping or self.finished.done():
            return
        self.attempt_failed("connect")
        if not self.stopping and self.remaining != 0:
            self.open_connection(slot, RETRY_DELAY_S)
        elif self.in_flight == 0:
            self.end()

    def attempt_failed(self, kind: str) -> None:
        """Opening a connection (or upgrading it) failed: one errored request of `kind`,
        part of `-n`; when no connection ever opened and each has failed, the run stops."""
        now = monotonic_ns()
        if self.remaining != 0 or self.scheduler is not None:
            if self.remaining > 0:
                self.remaining -= 1
            self.stats.start(now)
            self.stats.errored_request(now, now, kind)
        self.failed_connects += 1
        if not self.ever_connected and self.failed_connects >= self.connection_count:
            self.stop()  # nothing answers: the run is over

    # the run

    async def execute(self) -> RunStats:
        """Run to the end; the statistics of this process."""
        options = self.options
        cpu_before = cpu_seconds()
        self.start_ns = monotonic_ns()
        self.stats.measure_from_ns = self.start_ns + int(options.warm_up * 1e9)
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.add_signal_handler(signum, self.interrupt)
        deliver_stop_signals(True)
        for slot in range(self.connection_count):
            self.open_connection(slot)
        if self.scheduler is not None:
            self.scheduler.begin(self.start_ns)
        if options.duration is not None:
            self.handles.append(self.loop.call_later(options.warm_up + options.duration,
                                                     self.stop))
        self.handles.append(self.loop.call_later(options.warm_up + 1.0, self.tick_second))
        self.handles.append(self.loop.call_later(min(options.timeout / 4, 1.0),
                                                 self.check_timeouts))
        try:
            await self.finished
        finally:
            deliver_stop_signals(False)
            for signum in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    self.loop.remove_signal_handler(signum)
        for handle in self.handles:
            handle.cancel()
        stats = self.stats
        measured_from = max(stats.measure_from_ns, self.start_ns)
        stats.duration_s = max(self.end_ns - measured_from, 1) / 1e9
        if stats.latency.count > stats.second_start.count or stats.second_errors:
            stats.close_second(self.second)
        stats.cpu_s = cpu_seconds() - cpu_before
        return stats

    def tick_second(self) -> None:
        if self.finished.done():
            return
        self.stats.close_second(self.second)
        self.second += 1
        if self.progress is not None:
            self.progress(self.stats, self.second)
        self.handles.append(self.loop.call_later(
            max(0.0, (self.stats.measure_from_ns + (self.second + 1) * 1e9 - monotonic_ns())
                / 1e9), self.tick_second))

    def check_timeouts(self) -> None:
        if self.finished.done():
            return
        now = monotonic_ns()
        for connection in list(self.connections):
            connection.timed_out(now, self.timeout_ns)
        self.handles.append(self.loop.call_later(min(self.options.timeout / 4, 1.0),
                                                 self.check_timeouts))

    def stop(self) -> None:
        """No more requests: wait a moment for those in flight, then end."""
        if self.stopping:
            return
        self.stopping = True
        self.end_ns = monotonic_ns()
        if self.scheduler is not None:
            self.stats.unsent += self.scheduler.stop()
        if self.in_flight == 0:
            self.end()
        else:
            self.handles.append(self.loop.call_later(
                min(DRAIN_GRACE_S, self.options.timeout), self.cut_off))

    def interrupt(self) -> None:
        """Ctrl-C (or SIGTERM): stop now; what is in flight counts as unfinished."""
        self.interrupted = True
        self.stop()
        self.cut_off()

    def cut_off(self) -> None:
        now = monotonic_ns()
        for connection in list(self.connections):
            connection.fail("unfinished", now)
        self.end()

    def end(self) -> None:
        if self.finished.done():
            return
        if not self.end_ns:
            self.end_ns = monotonic_ns()
        self.stopping = True
        if self.scheduler is not None:
            self.stats.unsent += self.scheduler.stop()
        for connection in list(self.connections):
            if not connection.closed:
                self.count_connection_rate(connection, self.end_ns)
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()
        self.finished.set_result(None)


def _quiet(task: asyncio.Task[None]) -> None:
    """A connection task's unexpected failure is printed as one line, never a traceback."""
    if not task.cancelled() and task.exception() is not None:
        print(f"qactuar load: {task.exception()!r}", file=sys.stderr)

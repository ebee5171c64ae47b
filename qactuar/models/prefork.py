"""The `prefork` model: a supervisor binds, then forks workers that share the sockets.

Each worker is the async server (`aio.serve`) on the inherited sockets with
its own lifespan; this module decides when workers start and stop: crash
replacement with back-off, hung-worker replacement (heartbeat older than
WORKER_TIMEOUT), MAX_REQUESTS recycling, SIGHUP graceful reload,
SIGTTIN/SIGTTOU scaling and SIGTERM/SIGINT shutdown.  The supervisor keeps
its copies of the listening sockets until it stops, so a connection that
arrives while no worker is accepting waits in the backlog instead of being
refused.  It never serves a request itself.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from qactuar.admin.listen import bind_with_admin
from qactuar.asgi.router import Mount
from qactuar.config import Config, ConfigError
from qactuar.logs import child_logger, server_logger
from qactuar.models.aio import ProcessRole, loop_factory, serve
from qactuar.pod.placement import EXIT_BEAN_FAILED, PreforkPodPlan
from qactuar.server_state import ServerObserver, ServerState
from qactuar.sockets import close_all, describe, tls_context
from qactuar.supervisor import (
    CHILD_STOP_SIGNALS,
    EXIT_STARTUP_FAILED,
    READY,
    RETIRING,
    STATUS,
    STOP_NOW,
    Child,
    SignalPipe,
    Slots,
    describe_exit,
    fork_child,
    heartbeat,
    kill_overdue,
    new_selector,
    next_deadline,
    reap,
    selector_timeout,
    signal_child,
)

# A worker that dies sooner than this after starting counts towards back-off.
QUICK_DEATH = 10.0
MAX_BACKOFF = 10.0
HUNG_KILL_GRACE = 2.0  # SIGKILL this long after SIGABRT if a hung worker is still there


class RequestQuota(ServerObserver):
    """A worker's quota of requests (MAX_REQUESTS plus its jitter): `on_limit` is
    called once that many responses are complete.  Only workers with
    MAX_REQUESTS set have one, so the async model's hot path pays nothing."""

    def __init__(self, request_limit: int) -> None:
        self.request_limit = request_limit
        self.finished = 0
        self.on_limit: Callable[[int], None] = lambda finished: None

    def request_finished(self) -> None:
        self.finished += 1
        if self.finished == self.request_limit:
            self.on_limit(self.finished)


def run_prefork_model(config: Config, mounts: list[Mount], importer: Any = None) -> int:
    """`importer`: what imports the apps afresh on SIGHUP (server.AppImporter), if any."""
    new_loop = loop_factory(config.LOOP)
    ssl_context = tls_context(config)
    sockets, admin_sockets = bind_with_admin(config)
    datagrams = None
    try:
        supervisor = PreforkSupervisor(config, mounts, sockets, ssl_context, new_loop,
                                       admin_sockets)
        supervisor.importer = importer
        if config.QUIC_BIND or config.UDP_BINDS:
            from qactuar.udp.binding import bind_datagrams

            # One lane (SO_REUSEPORT socket) per worker, bound once: the kernel's
            # 4-tuple hash keeps a client on its lane while workers come and go.
            datagrams = supervisor.datagrams = bind_datagrams(config, supervisor.target)
        return supervisor.run()
    finally:
        close_all(sockets)
        if datagrams is not None:
            datagrams.close()


class PreforkSupervisor:
    datagrams: Any = None  # QUIC_BIND / UDP_BINDS lanes (udp/binding.py), bound before forking

    def __init__(self, config: Config, mounts: list[Mount], sockets: list[socket.socket],
                 ssl_context: Any, new_loop: Callable[[], asyncio.AbstractEventLoop],
                 admin_sockets: list[socket.socket] | None = None) -> None:
        self.config = config
        self.mounts = mounts
        self.sockets = sockets
        self.ssl_context = ssl_context
        self.new_loop = new_loop
        self.target = config.WORKERS or os.cpu_count() or 1
        self.slots = Slots(max(256, self.target * 4))
        self.workers: dict[int, Child] = {}  # pid -> worker; Child.extra is its generation
        self.generation = 0
        self.failures = 0  # workers that died soon after starting, in a row
        self.spawn_at = 0.0
        self.ever_ready = False
        self.exit_status: int | None = None
        self.interval = min(config.CHECK_PROCESS_INTERVAL, config.WORKER_TIMEOUT)
        self.reloading = False
        self.forced = False
        self.pod_plan = PreforkPodPlan(config, server_logger)  # supervisor/one_worker beans
        # The admin plane (qactuar/admin), in this process, when ADMIN is on.
        self.admin_sockets = admin_sockets or []
        self.admin: Any = None
        self.rollback_on_failure = False  # an admin reload rolls back if a new worker fails
        self.reload_failure = ""
        self.importer: Any = None  # imports the apps afresh on SIGHUP (server.AppImporter)

    # -- the supervisor's loop ---------------------------------------------------

    def run(self) -> int:
        self.signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                   signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD))
        status = self.pod_plan.start(self.signals)
        if status is not None:
            self.signals.close()
            return self.pod_plan.stop(status)
        self.selector = new_selector(self.signals)
        scheme = "https" if self.ssl_context else "http"
        if self.admin_sockets:
            from qactuar.admin.prefork_plane import PreforkPlane

            self.admin = PreforkPlane(self, self.config, self.mounts, self.sockets,
                                      self.admin_sockets, scheme)
        server_logger.info("Prefork supervisor pid %d: bound %s; starting %d worker(s)",
                           os.getpid(), ", ".join(describe(s, scheme) for s in self.sockets),
                           self.target)
        if self.importer is not None and self.importer.targets:
            server_logger.info("App code: %s", self.importer.describe())
        next_check = time.monotonic() + self.interval
        try:
            while True:
                self._spawn_missing()
                deadline = next_deadline(self.workers.values(), next_check,
                                         self.spawn_at if self._missing() else None)
                self._wait(selector_timeout(deadline, self.interval))
                for signum in self.signals.read():
                    self._on_signal(signum)
                for pid, status in reap():
                    self._on_exit(pid, status)
                if self.pod_plan.failed and self.exit_status is None:
                    self._begin_stop(EXIT_BEAN_FAILED, "A supervisor bean failed the pod")
                if self.exit_status is not None and not self.workers:
                    break
                if time.monotonic() >= next_check:
                    self._check_workers()
                    next_check = time.monotonic() + self.interval
                kill_overdue(self.workers.values())
                self._finish_reload()
        finally:
            if self.admin is not None:
                self.admin.driver.close()
            self.selector.close()
            self.signals.close()
        self.exit_status = self.pod_plan.stop(self.exit_status)
        server_logger.info("Prefork supervisor stopped")
        return self.exit_status

    def _wait(self, timeout: float) -> None:
        if self.admin is None:
            self.selector.select(timeout)
        else:  # the admin plane serves while the supervisor waits
            self.admin.driver.wait([self.signals.fileno()], timeout)

    def _missing(self) -> int:
        current = [w for w in self.workers.values()
                   if w.extra == self.generation and not w.stopping]
        return self.target - len(current) if self.exit_status is None else 0

    def _spawn_missing(self) -> None:
        while self._missing() > 0 and time.monotonic() >= self.spawn_at:
            self._spawn()

    def _spawn(self) -> None:
        slot = self.slots.take()
        generation = self.generation
        hosts_one_worker_beans = self.pod_plan.before_fork()
        channel = self.admin.new_channel() if self.admin is not None else None
        pid = fork_child(lambda: self._run_worker(slot, channel), self._drop_supervisor_resources)
        if channel is not None:
            self.admin.forked(pid, channel)
        self.pod_plan.after_fork(pid, hosts_one_worker_beans)
        self.workers[pid] = Child(pid, slot, extra=generation)
        server_logger.info("Worker pid %d spawned", pid)

    def _drop_supervisor_resources(self) -> None:
        if self.admin is not None:
            self.admin.driver.close_in_child()
        self.selector.close()
        self.signals.close()

    # -- events ---------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return  # reaped right after
        name = signal.Signals(signum).name
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._begin_stop(0, f"Received {name}")
        elif self.exit_status is not None:
            server_logger.info("Received %s while stopping: ignored", name)
        elif signum == signal.SIGHUP:
            if self._import_afresh():
                self._begin_reload()
        elif signum == signal.SIGTTIN:
            if self.target * 2 >= self.slots.count:  # room for a reload's second set
                server_logger.warning("Received SIGTTIN: already at the most workers (%d)",
                                      self.target)
                return
            self.target += 1
            server_logger.info("Received SIGTTIN: now %d worker(s)", self.target)
        elif signum == signal.SIGTTOU:
            if self.target <= 1:
                server_logger.info("Received SIGTTOU: keeping the last worker")
                return
            self.target -= 1
            current = [w for w in self.workers.values()
                       if w.extra == self.generation and not w.stopping]
            if len(current) <= self.target:
                # Workers still to be started (a reload's, or after a back-off):
                # one fewer of those, none to stop.
                server_logger.info("Received SIGTTOU: now %d worker(s)", self.target)
                return
            newest = max(current, key=lambda w: w.started)
            server_logger.info("Received SIGTTOU: now %d worker(s); stopping worker pid %d",
                               self.target, newest.pid)
            self._stop_worker(newest)

    def _begin_stop(self, status: int, why: str) -> None:
        if self.exit_status is not None:
            if not self.forced:
                self.forced = True
                server_logger.warning("%s again: workers stop without waiting", why)
                for worker in self.workers.values():
                    signal_child(worker, STOP_NOW)
            return
        self.exit_status = status
        server_logger.info("%s", why)
        server_logger.info("Shutting down: no new connections, stopping %d worker(s), waiting "
                           "up to %ss for their requests", len(self.workers),
                           self.config.SHUTDOWN_TIMEOUT)
        # Close our copies now: once the workers close theirs, connections are refused.
        close_all(self.sockets)
        for worker in self.workers.values():
            self._stop_worker(worker)

    def _stop_worker(self, worker: Child) -> None:
        worker.stopping = True
        # Draining and then lifespan shutdown are each bounded by SHUTDOWN_TIMEOUT
        # in the worker; SIGKILL is the backstop for one that does not manage.
        signal_child(worker, signal.SIGTERM, kill_after=2 * self.config.SHUTDOWN_TIMEOUT + 3)

    def _begin_reload(self, why: str = "Received SIGHUP") -> None:
        self.generation += 1
        self.reloading = True
        self.failures = 0
        self.spawn_at = 0.0
        server_logger.info("%s: reload started, starting %d new worker(s) before "
                           "the old ones stop", why, self.target)

    def _import_afresh(self) -> bool:
        """Import the apps again from their files, so the workers forked next serve the
        code as it is now; False (logged, old workers serving) if it does not import."""
        if self.importer is None:
            return True
        if not self.importer.targets:
            server_logger.info("Received SIGHUP: the app was given as an object, not "
                               "\"module:attr\": new workers run the same code")
            return True
        try:
            mounts, code = self.importer()
        except ConfigError as exc:
            server_logger.error("Received SIGHUP: reload refused, the old workers keep "
                                "serving: %s", exc)
            return False
        self.mounts[:] = mounts  # shared with the admin plane
        server_logger.info("Received SIGHUP: imported the app afresh: %s", code)
        return True

    def begin_admin_reload(self) -> None:
        """A reload asked through the admin plane: it rolls back if a new worker fails."""
        self.rollback_on_failure = True
        self.reload_failure = ""
        self._begin_reload("Admin plane")

    def _roll_back_reload(self, why: str) -> None:
        """A new worker failed to start: stop the new ones, the old ones stay current."""
        new = [w for w in self.workers.values() if w.extra == self.generation]
        old = [w for w in self.workers.values() if w.extra != self.generation and not w.stopping]
        for worker in new:
            if not worker.stopping:
                self._stop_worker(worker)
        for worker in old:
            worker.extra = self.generation
        self.reloading = False
        self.rollback_on_failure = False
        self.reload_failure = why
        server_logger.error("Reload rolled back (%s): %d old worker(s) keep serving", why,
                            len(old))

    def set_worker_count(self, count: int) -> None:
        """Start or stop workers to reach `count` (the admin plane's POST /workers)."""
        self.target = count
        current = sorted((w for w in self.workers.values()
                          if w.extra == self.generation and not w.stopping),
                         key=lambda w: w.started)
        for worker in current[count:]:
            self._stop_worker(worker)

    def _finish_reload(self) -> None:
        if not self.reloading or self.exit_status is not None:
            return
        ready = self._ready_workers()
        if len(ready) < self.target:
            return
        old = [w for w in self.workers.values() if w.extra != self.generation and not w.stopping]
        for worker in old:
            self._stop_worker(worker)
        self.reloading = False
        self.rollback_on_failure = False
        server_logger.info("Reload finished: %d new worker(s) serving, %d old worker(s) "
                           "draining", len(ready), len(old))

    def _ready_workers(self) -> list[Child]:
        """The current generation's workers that serve and are not being stopped."""
        return [w for w in self.workers.values() if w.extra == self.generation
                and not w.stopping and self.slots.get(w.slot, STATUS) == READY]

    def _on_exit(self, pid: int, status: int) -> None:
        worker = self.workers.pop(pid, None)
        if worker is None:
            return
        worker_status = self.slots.get(worker.slot, STATUS)
        self.slots.release(worker.slot)
        self.ever_ready = self.ever_ready or worker_status in (READY, RETIRING)
        self.pod_plan.worker_exited(pid, [w.pid for w in self._ready_workers()],
                                    self.exit_status is not None)
        how = describe_exit(status)
        if self.admin is not None:
            self.admin.worker_exited(pid, how, expected=worker.stopping or (
                worker_status == RETIRING and os.WIFEXITED(status)))
        if (self.rollback_on_failure and self.reloading and not worker.stopping
                and worker.extra == self.generation and worker_status not in (READY, RETIRING)):
            self._roll_back_reload(f"new worker pid {pid} {how} before it was ready")
            return
        if worker.stopping:
            server_logger.info("Worker pid %d stopped (%s)", pid, how)
            if self.exit_status == 0 and os.waitstatus_to_exitcode(status) == EXIT_BEAN_FAILED:
                self.exit_status = EXIT_BEAN_FAILED  # a bean failed it while it drained
            return
        if worker.reason:
            server_logger.error("Worker pid %d %s after %s; replacing it", pid, how, worker.reason)
            return
        if worker_status == RETIRING and os.WIFEXITED(status):
            server_logger.info("Worker pid %d recycled (MAX_REQUESTS); replacing it", pid)
            return
        code = os.waitstatus_to_exitcode(status)
        if code == EXIT_BEAN_FAILED:
            self._begin_stop(EXIT_BEAN_FAILED, f"Worker pid {pid}: a bean failed the pod")
            return
        self.ever_ready = self.ever_ready or any(
            self.slots.get(w.slot, STATUS) in (READY, RETIRING) for w in self.workers.values())
        if code == EXIT_STARTUP_FAILED and not self.ever_ready:
            self._begin_stop(EXIT_STARTUP_FAILED, f"Worker pid {pid} failed application startup")
            return
        lived = time.monotonic() - worker.started
        self.failures = self.failures + 1 if lived < QUICK_DEATH else 1
        delay = 0.0 if self.failures <= 1 else min(MAX_BACKOFF, 0.5 * 2 ** (self.failures - 2))
        self.spawn_at = time.monotonic() + delay
        server_logger.error("Worker pid %d %s unexpectedly; replacing it%s", pid, how,
                            f" in {delay:g}s (it keeps dying)" if delay else "")

    def _check_workers(self) -> None:
        """Replace workers whose event loop has not run for WORKER_TIMEOUT."""
        timeout = self.config.WORKER_TIMEOUT
        for worker in self.workers.values():
            if worker.stopping or worker.reason:
                continue
            silence = self.slots.silence(worker.slot)
            if silence > timeout:
                worker.reason = f"hanging (its event loop was blocked for {silence:.1f}s, " \
                                f"WORKER_TIMEOUT is {timeout:g}s)"
                server_logger.error("Worker pid %d is hung: its event loop has not run for "
                                    "%.1fs (WORKER_TIMEOUT %gs); killing it",
                                    worker.pid, silence, timeout)
                signal_child(worker, signal.SIGABRT, kill_after=HUNG_KILL_GRACE)

    # -- inside a worker --------------------------------------------------------------

    def _run_worker(self, slot: int, channel: Any = None) -> int:
        config = self.config
        agent = self.admin.worker_agent(channel) if channel is not None else None
        random.seed()  # each worker its own jitter
        parent = os.getppid()
        tasks: set[asyncio.Task[None]] = set()

        quota = (RequestQuota(config.MAX_REQUESTS
                              + random.randint(0, config.MAX_REQUESTS_JITTER))
                 if config.MAX_REQUESTS else None)

        def on_start(state: ServerState, stop: Callable[[], None]) -> None:
            if quota is not None:

                def recycle(finished: int) -> None:
                    self.slots.set(slot, STATUS, RETIRING)
                    child_logger.info("Worker pid %d served %d requests (MAX_REQUESTS): "
                                      "recycling", os.getpid(), finished)
                    stop()

                quota.on_limit = recycle
            tasks.add(state.loop.create_task(
                heartbeat(self.slots, slot, self.interval / 2, parent, stop)))
            if agent is not None:
                from qactuar.admin.stats import ProcessStats

                state.stats = ProcessStats()
                tasks.add(agent.start(state))

        def on_listening() -> None:
            self.slots.set(slot, STATUS, READY)

        role = ProcessRole(model="prefork", logger=child_logger,
                           observer=quota,
                           on_start=on_start, on_listening=on_listening,
                           stop_signals=CHILD_STOP_SIGNALS, datagrams=self.datagrams, slot=slot)
        with asyncio.Runner(loop_factory=self.new_loop) as runner:
            code = runner.run(serve(config, self.mounts, self.sockets, self.ssl_context, role))
        if agent is not None:
            agent.send_final()
        return code

"""Beans in the processes that must not run an event loop: the prefork supervisor and
the postfork parent.

Those parents wait in a plain selector loop and fork (a running loop must
not be forked), so their beans run in a thread with its own loop
(`ThreadPod`); the parent wakes on a SIGCHLD the thread sends when a bean
fails the pod.  `PreforkPodPlan` also decides which worker runs the
`one_worker` beans, and moves them to another worker (TAKE_OVER_SIGNAL) when
that one dies.  Children forked while the thread runs forget its pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterable

from qactuar.config import Config
from qactuar.pod.bean import BeanSpec
from qactuar.pod.context import set_current_pod
from qactuar.pod.pod import CANCEL_GRACE, EXIT_BEAN_FAILED, Pod
from qactuar.pod.serving import TAKE_OVER_SIGNAL, load_server_beans, set_hosting_one_worker
from qactuar.supervisor import SignalPipe, new_selector

__all__ = ["EXIT_BEAN_FAILED", "PreforkPodPlan", "ThreadPod", "parent_pod"]

os.register_at_fork(after_in_child=lambda: set_current_pod(None))


class ThreadPod:
    """A pod on its own event loop in a daemon thread of a parent process."""

    def __init__(self, config: Config, specs: list[BeanSpec], logger: logging.Logger) -> None:
        self.config = config
        self.pod = Pod(specs, settings=config, stop_wait_time=config.STOP_WAIT_TIME,
                       logger=logger)
        self.logger = logger
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qactuar-pod", daemon=True)
        self.gates_ok = False

    @property
    def failed(self) -> bool:
        return self.pod.failed is not None

    def start(self, signals: SignalPipe) -> int | None:
        """Start the beans and wait for the gate beans; None when serving may begin, else
        the exit status (EXIT_BEAN_FAILED, or 0 when SIGINT/SIGTERM came first).

        The parent's stop signals are read from its signal pipe meanwhile: a gate
        bean that never becomes ready must not make the process deaf to them.
        """
        self._thread.start()
        with new_selector(signals) as selector:
            while not self._started.is_set():
                selector.select(1.0)  # the thread's SIGCHLD wakes it once started
                stops = [s for s in signals.read() if s in (signal.SIGINT, signal.SIGTERM)]
                if stops:
                    self.logger.info("Received %s while the gate beans were starting",
                                     signal.Signals(stops[0]).name)
                    return 0
        return None if self.gates_ok else EXIT_BEAN_FAILED

    def _wake_parent(self) -> None:
        """SIGCHLD reaches the parent's signal pipe: its selector looks at the pod again."""
        os.kill(os.getpid(), signal.SIGCHLD)

    def _run(self) -> None:
        self.pod.on_failure = lambda bean: self._wake_parent()
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            self._started.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        try:
            await self.pod.start()
            self.gates_ok = await self.pod.wait_gates() and not self.failed
        finally:
            self._started.set()
            self._wake_parent()
        await self.pod.halted()
        await self.pod.stop("SIGTERM")

    def stop(self) -> None:
        """Stop the beans (bounded by STOP_WAIT_TIME plus the cancel grace)."""
        if self.loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                self.loop.call_soon_threadsafe(self.pod.halt)
            self._thread.join(self.config.STOP_WAIT_TIME + CANCEL_GRACE + 1)


def parent_pod(config: Config, logger: logging.Logger) -> ThreadPod | None:
    """The postfork parent's beans: all of them, whatever their placement."""
    specs = load_server_beans(config) if config.BEANS else []
    return ThreadPod(config, specs, logger) if specs else None


class PreforkPodPlan:
    """What the prefork supervisor does for the pod: its own beans, and the one_worker host."""

    def __init__(self, config: Config, logger: logging.Logger) -> None:
        specs = load_server_beans(config) if config.BEANS else []
        mine = [s for s in specs if s.placement == "supervisor"]
        self.thread = ThreadPod(config, mine, logger) if mine else None
        self.logger = logger
        self.has_one_worker = any(s.placement == "one_worker" for s in specs)
        self.host_pid: int | None = None
        self.host_wanted = self.has_one_worker

    @property
    def failed(self) -> bool:
        return self.thread is not None and self.thread.failed

    def start(self, signals: SignalPipe) -> int | None:
        """The supervisor's own beans (see ThreadPod.start)."""
        return self.thread.start(signals) if self.thread is not None else None

    def before_fork(self) -> bool:
        """Whether the worker about to be forked hosts the one_worker beans."""
        host = self.host_wanted
        set_hosting_one_worker(host)
        self.host_wanted = False
        return host

    def after_fork(self, pid: int, host: bool) -> None:
        set_hosting_one_worker(False)
        if host:
            self.host_pid = pid
            self.logger.info("Worker pid %d runs the one_worker bean(s)", pid)

    def worker_exited(self, pid: int, ready_workers: Iterable[int], stopping: bool) -> None:
        if pid != self.host_pid:
            return
        self.host_pid = None
        if stopping:
            return
        for candidate in ready_workers:
            try:
                os.kill(candidate, TAKE_OVER_SIGNAL)
            except ProcessLookupError:
                continue
            self.host_pid = candidate
            self.logger.info("Worker pid %d ended: its one_worker bean(s) move to worker "
                             "pid %d", pid, candidate)
            return
        self.host_wanted = True  # the next worker started takes them
        self.logger.info("Worker pid %d ended: its one_worker bean(s) go to the next worker",
                         pid)

    def stop(self, status: int | None) -> int | None:
        if self.thread is not None:
            self.thread.stop()
            if self.thread.failed and not status:
                return EXIT_BEAN_FAILED
        return status

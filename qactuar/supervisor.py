"""What the prefork and postfork parents share: forking, signals, reaping, heartbeats.

A parent here never runs an event loop while it forks: it waits in a plain
`selectors` loop woken by its signal pipe, so every child starts a fresh
event loop (forking a running uvloop loop is unsafe).  This module owns
the shared-memory slots through which children report that their loop
runs (heartbeat) and what their current request is doing, the signal pipe,
process reaping and the escalation from a polite signal to SIGKILL.  It
never serves a request and never decides *when* to start a child: that is
the model's job (`models/prefork.py`, `models/postfork.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import mmap
import os
import selectors
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qactuar.logs import exception_logger

# Slot fields, one float64 each (written by the child, read by the parent).
# SPEAKS_HTTP2: a postfork child's connection went over to HTTP/2, so the
# parent must not answer for a crashed child in HTTP/1.1.
HEARTBEAT, STATUS, REQUEST_STARTED, RESPONDED, REQUESTS, SPEAKS_HTTP2 = range(6)
_FIELDS = 6
_FIELD_SIZE = struct.calcsize("d")

# STATUS values.
BOOTING, READY, RETIRING = 0.0, 1.0, 2.0

EXIT_STARTUP_FAILED = 3
# Signals a child must not act on: the parent handles them for the group.
_PARENT_ONLY = (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGINT)
# A parent tells a child to stop with SIGTERM, and to stop without waiting with
# STOP_NOW: a different signal, because a second SIGTERM sent before the child
# took the first merges with it (signals of one kind do not queue) and is lost.
STOP_NOW = signal.SIGQUIT
CHILD_STOP_SIGNALS = (signal.SIGTERM, STOP_NOW)


class Slots:
    """Fixed-size shared memory, one record of float64 fields per child.

    Created before forking (an anonymous shared mapping), so the parent and
    every child see the same bytes without a lock: each record has one
    writer, and a torn read of one float is impossible on the platforms we
    run on (aligned 8-byte stores).
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._memory = mmap.mmap(-1, max(1, count) * _FIELDS * _FIELD_SIZE)
        self._values = memoryview(self._memory).cast("d")
        self._free = list(range(count - 1, -1, -1))

    def take(self) -> int:
        """Reserve a slot for a new child (the parent calls this before forking)."""
        index = self._free.pop()
        base = index * _FIELDS
        for offset in range(_FIELDS):
            self._values[base + offset] = 0.0
        self._values[base + HEARTBEAT] = time.monotonic()
        return index

    def release(self, index: int) -> None:
        self._free.append(index)

    @property
    def available(self) -> int:
        return len(self._free)

    def get(self, index: int, name: int) -> float:
        return self._values[index * _FIELDS + name]

    def set(self, index: int, name: int, value: float) -> None:
        self._values[index * _FIELDS + name] = value

    def beat(self, index: int) -> None:
        self._values[index * _FIELDS + HEARTBEAT] = time.monotonic()

    def silence(self, index: int) -> float:
        """Seconds since the child's event loop last ran its heartbeat."""
        return time.monotonic() - self._values[index * _FIELDS + HEARTBEAT]


class SignalPipe:
    """Signals become bytes on a pipe the parent's selector watches."""

    def __init__(self, signums: Iterable[int]) -> None:
        self._owner = os.getpid()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.signums = tuple(signums)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in self.signums:
            # A no-op Python handler: the wakeup fd carries the signal number.
            signal.signal(signum, _ignore)

    def fileno(self) -> int:
        return self._read_fd

    def read(self) -> list[int]:
        received: list[int] = []
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(self._read_fd, 512)
                if not data:
                    break
                received.extend(data)
        return received

    def close(self) -> None:
        """Stop taking signals this way (in a new child, or before the parent exits).

        A late SIGTERM is then ignored instead of killing a parent that is
        finishing up.  SIG_IGN rather than the no-op handler: the interpreter
        puts back the default (fatal) action for Python handlers as it exits.
        SIGCHLD goes back to its default, as ignoring it would reap children.

        In a new child (fork_child blocks signals around this) every signal goes
        back to its default instead: SIG_IGN would discard a SIGTERM already
        pending from the parent, and the child would keep serving until killed.
        prepare_child_signals() then sets the child's own dispositions.
        """
        signal.set_wakeup_fd(-1)
        in_child = os.getpid() != self._owner
        for signum in self.signums:
            keep_default = in_child or signum == signal.SIGCHLD
            signal.signal(signum, signal.SIG_DFL if keep_default else signal.SIG_IGN)
        os.close(self._read_fd)
        os.close(self._write_fd)


def _ignore(signum: int, frame: Any) -> None:
    """The handler whose only job is to let the wakeup fd see the signal."""


def describe_exit(status: int) -> str:
    """'exited with code 3' or 'was killed by signal SIGKILL', from a wait status."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"was killed by signal {name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def exited_cleanly(status: int) -> bool:
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def reap() -> list[tuple[int, int]]:
    """Every child that has ended, as (pid, wait status); never blocks."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        ended.append((pid, status))
    return ended


def fork_child(run: Callable[[], int], cleanup: Callable[[], None]) -> int:
    """Fork; in the child run `cleanup` (drop the parent's resources), then `run`,
    and end with its exit status without ever returning into the parent's code."""
    sys.stdout.flush()
    sys.stderr.flush()
    # Signals wait until the child has let go of the parent's signal pipe: one
    # arriving in between would otherwise be read by the parent as its own.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return pid
    code = 1
    try:
        cleanup()
        prepare_child_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        code = run()
    except BaseException:  # a child must never fall back into the parent's loop
        with contextlib.suppress(BaseException):
            exception_logger.exception("child process %d failed", os.getpid())
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return 0  # unreachable; keeps type checkers content


def prepare_child_signals() -> None:
    """Default signal handling in a new child, except what only the parent handles.

    SIGINT is ignored too: Ctrl-C reaches the whole process group, and the
    parent turns it into one SIGTERM per child, so a child drains once
    instead of taking the parent's SIGTERM for a second, forcing signal.
    """
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    # Until the child's event loop takes STOP_NOW, the SIGTERM sent with it
    # does the stopping (STOP_NOW's default action would dump core).
    for signum in (*_PARENT_ONLY, STOP_NOW):
        signal.signal(signum, signal.SIG_IGN)
    # A hung child killed with SIGABRT (or one that crashes) leaves its Python stack.
    faulthandler.enable(file=sys.stderr, all_threads=True)


async def heartbeat(slots: Slots, index: int, interval: float, parent: int,
                    stop: Callable[[], None]) -> None:
    """Prove the child's event loop runs; stop the child if its parent went away."""
    while True:
        slots.beat(index)
        if os.getppid() != parent:
            stop()  # orphaned (the parent was killed): finish up and exit
            return
        await asyncio.sleep(interval)


@dataclass
class Child:
    """One child process as its parent sees it."""

    pid: int
    slot: int
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False  # asked to stop (SIGTERM sent)
    kill_at: float | None = None  # when to SIGKILL it if still alive
    reason: str = ""  # why the parent ended it, for the log
    extra: Any = None  # the model's own data (a postfork child's connection)


def signal_child(child: Child, signum: int, kill_after: float | None = None) -> None:
    """Send `signum`; with `kill_after`, SIGKILL follows if the child outlives it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signum)
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        child.kill_at = deadline if child.kill_at is None else min(child.kill_at, deadline)


def kill_overdue(children: Iterable[Child]) -> None:
    """SIGKILL every child past its kill deadline."""
    now = time.monotonic()
    for child in children:
        if child.kill_at is not None and now >= child.kill_at:
            child.kill_at = None
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)


def next_deadline(children: Iterable[Child], *others: float | None) -> float | None:
    """The earliest kill deadline or other moment, for the selector's timeout."""
    moments = [child.kill_at for child in children if child.kill_at is not None]
    moments.extend(moment for moment in others if moment is not None)
    return min(moments) if moments else None


def selector_timeout(deadline: float | None, ceiling: float) -> float:
    if deadline is None:
        return ceiling
    return max(0.0, min(ceiling, deadline - time.monotonic()))


def new_selector(*fileobjs: Any) -> selectors.BaseSelector:
    selector = selectors.DefaultSelector()
    for fileobj in fileobjs:
        selector.register(fileobj, selectors.EVENT_READ)
    return selector

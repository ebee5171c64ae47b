"""One event-loop timer for every HTTP/1.1 connection's deadline.

An idle keep-alive connection still owes a deadline (KEEP_ALIVE_TIMEOUT), and a
loop timer for it costs about 575 bytes (uvloop's handle, its libuv timer and a
bound method), a fifth of what the whole idle connection costs.  A server keeps
its connections' deadlines in one heap instead, each entry a three-item list,
and one loop timer armed at the earliest.  Cancelling an entry forgets its
connection (the entry stays in the heap until it is due, or until cancelled
entries are the larger part of the heap, which is then rebuilt without them).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from typing import Any, Protocol

from qactuar.logs import exception_logger

# libuv timers have millisecond resolution: a deadline this close has passed.
TIMER_SLACK = 0.001
# Below this many entries the heap is never rebuilt for its cancelled ones.
_COMPACT_ABOVE = 64
# An entry: [deadline, sequence number (the tie-break), connection or None].
_AT, _SEQUENCE, _TARGET = range(3)


class DeadlineTarget(Protocol):
    def deadline_due(self) -> None:
        """Its deadline has come: act on what is due, arm again for what is not."""


class Deadlines:
    """The deadlines of one server's connections, as one loop timer."""

    __slots__ = ("_cancelled", "_context", "_entries", "_loop", "_sequence", "_timer",
                 "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, context: contextvars.Context) -> None:
        self._loop = loop
        self._context = context  # timers run in it, not in whatever context armed them
        self._entries: list[list[Any]] = []
        self._sequence = itertools.count()
        self._cancelled = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def __len__(self) -> int:
        """Entries still due to fire (cancelled ones not counted)."""
        return len(self._entries) - self._cancelled

    @property
    def held(self) -> int:
        """Entries in the heap, cancelled ones not yet dropped included."""
        return len(self._entries)

    def add(self, deadline: float, target: DeadlineTarget) -> list[Any]:
        """Call `target.deadline_due()` at `deadline` (loop time); the entry is the handle."""
        entry = [deadline, next(self._sequence), target]
        heapq.heappush(self._entries, entry)
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)
        return entry

    def cancel(self, entry: list[Any]) -> None:
        if entry[_TARGET] is None:
            return
        entry[_TARGET] = None
        self._cancelled += 1
        entries = self._entries
        if len(entries) > _COMPACT_ABOVE and self._cancelled * 2 > len(entries):
            entries[:] = [kept for kept in entries if kept[_TARGET] is not None]
            heapq.heapify(entries)
            self._cancelled = 0

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire, context=self._context)

    def _fire(self) -> None:
        self._timer = None
        entries = self._entries
        now = self._loop.time() + TIMER_SLACK
        while entries and entries[0][_AT] <= now:
            target = heapq.heappop(entries)[_TARGET]
            if target is None:
                self._cancelled -= 1
                continue
            try:
                target.deadline_due()
            except Exception:  # one connection's failure must not stop the others' deadlines
                exception_logger.exception("a connection's deadline handler failed")
        # (a handler that armed again may have armed the timer for later than
        # an entry that was already waiting)
        if entries and (self._timer is None or entries[0][_AT] < self._timer_at):
            self._arm(entries[0][_AT])

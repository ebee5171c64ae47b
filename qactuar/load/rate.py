"""The open model of `--rate R`: requests fall due at fixed times, answered or not.

Request k is due at `start + k / R`.  A tick (at most once a millisecond)
hands every request now due to a connection with room; when none has room
the request waits in a backlog, and the first connection to finish a
response sends the oldest one.  Either way its latency is measured from the
time it was due (no coordinated omission: a stalled server shows as the
backlog's growing wait).  Requests that had to wait are counted as `late`,
those still waiting when the run ends as `unsent`.
"""

from __future__ import annotations

from collections import deque
from time import monotonic_ns
from typing import Any

TICK_NS = 1_000_000  # the scheduler never wakes more than once a millisecond


class RateScheduler:
    """Dispatches due requests to the run's connections with room."""

    def __init__(self, run: Any, rate: float, loop: Any) -> None:
        self.run = run
        self.loop = loop
        self.interval_ns = 1e9 / rate
        self.start_ns = 0
        self.issued = 0
        self.backlog: deque[int] = deque()
        self.ready: list[Any] = []  # connections that had room when last seen
        self.handle: Any = None
        self.stopped = False

    def begin(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.tick()

    def stop(self) -> int:
        """Stop scheduling; the number of due requests never sent."""
        self.stopped = True
        if self.handle is not None:
            self.handle.cancel()
        unsent = len(self.backlog)
        self.backlog.clear()
        return unsent

    def tick(self) -> None:
        if self.stopped:
            return
        now = monotonic_ns()
        due_count = int((now - self.start_ns) / self.interval_ns) + 1 - self.issued
        run = self.run
        if run.remaining >= 0:  # -n: that many requests in all, then no more ticks
            due_count = min(due_count, run.remaining)
            run.remaining -= due_count
        ready = self.ready
        for _ in range(due_count):
            due = self.start_ns + int(self.issued * self.interval_ns)
            self.issued += 1
            while ready and ready[-1].room() <= 0:
                ready.pop()
            if ready:
                run.begin_request(due)
                ready[-1].send_one(due)
            else:
                self.backlog.append(due)
        if run.remaining == 0:
            self.handle = None
            return
        next_due = self.start_ns + self.issued * self.interval_ns
        delay = max(next_due - monotonic_ns(), TICK_NS) / 1e9
        self.handle = self.loop.call_later(delay, self.tick)

    def take(self) -> int:
        """The oldest waiting request's due time for a connection that has room, or -1."""
        if self.backlog:
            due = self.backlog.popleft()
            self.run.stats.late += due >= self.run.stats.measure_from_ns
            self.run.begin_request(due)
            return due
        return -1

    def has_room(self, connection: Any) -> None:
        if connection not in self.ready:
            self.ready.append(connection)

# cython: annotation_typing=False
"""The per-request questions every engine asks its run: may another request go, one is over.

`Flow` is the compiled base class of `runner.Run`: the counters each request
touches (requests left for `-n`, requests in flight, whether the run is
stopping) and the statistics live in its C fields, so an engine's `take` and
`answered` are C calls, not attribute lookups on a Python object.  Everything
else (connections, timers, ending) stays in `Run`; `Flow` calls back only
`end()` and the rate scheduler's `take()`.
"""




class Flow:
    """Requests left, in flight and the stopping flag of one process's share of a run.

    The subclass sets `stats` (RunStats), `remaining` (-1: no -n limit), `in_flight`,
    `stopping`, `scheduler` (the RateScheduler of --rate, else None), and provides
    `loop` and `end()`.
    """

    def take(self, now: int) -> int:
        """The start time of one more request a connection may send now, or -1."""
        if self.stopping:
            return -1
        if self.scheduler is not None:
            return self.scheduler.take()
        if self.remaining == 0:
            return -1
        if self.remaining > 0:
            self.remaining -= 1
        self.in_flight += 1
        self.stats.start(now)
        return now

    def begin_request(self, start: int) -> None:
        """A request the scheduler sends (or the backlog gives out) starts."""
        self.in_flight += 1
        self.stats.start(start)

    def answered(self, start: int, now: int, status: int, head_bytes: int,
                 body_bytes: int) -> None:
        self.in_flight -= 1
        self.stats.answered(start, now, status, head_bytes, body_bytes)
        if self.in_flight == 0 and (self.stopping or self.all_sent()):
            self.end()

    def errored(self, start: int, now: int, kind: str) -> None:
        self.in_flight -= 1
        self.stats.errored_request(start, now, kind)
        if self.in_flight == 0 and (self.stopping or self.all_sent()):
            self.loop.call_soon(self.end)

    def all_sent(self) -> bool:
        """-n requests were sent (none waits in the open model's backlog)."""
        return self.remaining == 0 and (self.scheduler is None or not self.scheduler.backlog)

    def end(self) -> None:
        raise NotImplementedError  # Run's

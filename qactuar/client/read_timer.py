"""The read-timeout timer both connection kinds share: one loop timer per connection.

A request only moves the timer earlier when it needs it sooner; otherwise nothing is
armed or cancelled per request. The connection's own `_check_read` decides what has
timed out when the timer fires and arms it again for the next deadline.
"""

from __future__ import annotations

import asyncio


class ReadTimer:
    """Mixed into a connection protocol that has `loop`, `timer`, `timer_due` and a
    `_check_read()` of its own."""

    __slots__ = ()  # (HTTP1Connection keeps its fields in slots)

    loop: asyncio.AbstractEventLoop
    timer: asyncio.TimerHandle | None
    timer_due: float

    def _arm_timer(self, read_timeout: float | None, now: float) -> None:
        if read_timeout is None:
            return
        due = now + read_timeout
        if self.timer is None or due < self.timer_due:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_due = due
            self.timer = self.loop.call_at(due, self._check_read)

    def _check_read(self) -> None:
        raise NotImplementedError

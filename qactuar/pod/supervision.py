"""Restart policies: whether a bean that ended runs again, after how long, and when to give up.

`permanent` beans run again whatever the outcome, `transient` ones only after
an exception, `temporary` ones never.  At most `max_restarts` restarts within
`restart_period` seconds; the delay before each doubles from `backoff` (capped
at MAX_BACKOFF) while the bean keeps failing, and falls back once a run lasted
longer than the period.  Past the limit the pod gives up (`pod.py` escalates).
Nothing here touches the event loop.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from qactuar.pod.bean import BeanSpec

MAX_BACKOFF = 5.0

# How a bean's run ended.
RETURNED, RAISED, CANCELLED = "returned", "raised", "cancelled"


@dataclass
class RestartTracker:
    """One bean's restart history under its spec's policy."""

    spec: BeanSpec
    restarts: deque[float] = field(default_factory=deque)
    count: int = 0  # restarts over the bean's whole life, for views and logs
    started: float = field(default_factory=time.monotonic)
    _delay: float = 0.0

    def wants_restart(self, outcome: str) -> bool:
        """Whether the policy asks for another run after this outcome.

        A cancelled bean was stopped on purpose (pod stop, `remove_bean`):
        never restarted, whatever the policy.
        """
        if outcome == CANCELLED:
            return False
        if self.spec.restart == "permanent":
            return True
        return self.spec.restart == "transient" and outcome == RAISED

    def allowed(self, now: float | None = None) -> bool:
        """Record a restart if the limit within the period allows it."""
        now = time.monotonic() if now is None else now
        period = self.spec.restart_period
        while self.restarts and now - self.restarts[0] > period:
            self.restarts.popleft()
        if len(self.restarts) >= self.spec.max_restarts:
            return False
        self.restarts.append(now)
        self.count += 1
        return True

    def next_delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next run: doubling while the bean keeps failing."""
        now = time.monotonic() if now is None else now
        if now - self.started > self.spec.restart_period:
            self._delay = 0.0  # it ran well for a while: start the back-off over
        self._delay = self.spec.backoff if not self._delay else min(MAX_BACKOFF, self._delay * 2)
        return self._delay

    def ran(self, now: float | None = None) -> None:
        self.started = time.monotonic() if now is None else now

    def describe_limit(self) -> str:
        return (f"{self.spec.max_restarts} restart(s) within {self.spec.restart_period:g}s")

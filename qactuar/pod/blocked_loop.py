"""The blocked-loop detector: logs what the event loop was running when it stopped turning.

The loop stamps a time every `threshold / 4` seconds; a watchdog thread
checks the stamp and, once it is older than `threshold`, logs a warning with
the loop thread's current stack (read with `sys._current_frames()`), once
per blocking episode.  Costs one timer callback per interval on the loop;
never touches the loop from the watchdog thread.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

from qactuar.logs import server_logger


class BlockedLoopDetector:
    """Watch one event loop from a daemon thread; `stop()` ends both sides."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float,
                 logger: logging.Logger = server_logger) -> None:
        self.loop = loop
        self.threshold = threshold
        self.interval = max(0.005, threshold / 4)
        self.logger = logger
        self.last_turn = time.monotonic()
        self.reports = 0
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._watch, name="qactuar-blocked-loop",
                                        daemon=True)

    def start(self) -> None:
        """Call from the loop's thread, with the loop running."""
        self._loop_thread = threading.get_ident()
        self._turn()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._handle is not None:
            self._handle.cancel()

    def _turn(self) -> None:
        self.last_turn = time.monotonic()
        if not self._stopped.is_set():
            self._handle = self.loop.call_later(self.interval, self._turn)

    def _watch(self) -> None:
        reported_for = 0.0  # the stamp of the episode already reported
        while not self._stopped.wait(self.interval):
            stamp = self.last_turn
            blocked = time.monotonic() - stamp
            if blocked <= self.threshold or stamp == reported_for:
                continue
            reported_for = stamp
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)\n"
            self.reports += 1
            self.logger.warning("Event loop blocked for more than %.3gs (threshold %gs); it "
                                "is running:\n%s", blocked, self.threshold, stack.rstrip())

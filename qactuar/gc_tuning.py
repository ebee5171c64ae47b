"""The garbage collector's first threshold, raised once a serving process has started.

CPython collects its youngest generation after every 700 new container objects (dicts,
lists, tasks, coroutine frames) that are still alive; a server with many requests in
flight makes that many every few dozen requests, and each collection walks every young
object still alive: at 160 HTTP/2 streams in flight about 5 % of the instructions per
request (benchmarks/callgrind_h2.py: 70,522 -> 66,667 with a threshold of 7,000). A
higher threshold lets most request objects die by reference counting before any
collection sees them; cyclic garbage waits a little longer (at most GC_THRESHOLD
objects).  An app that set thresholds of its own, or turned the collector off, keeps
them.
"""

from __future__ import annotations

import gc
import logging

# The thresholds before the app's code ran: this module is imported by the server
# before it imports any app.
_THRESHOLDS_BEFORE_APPS = gc.get_threshold()


def raise_collector_threshold(threshold: int, logger: logging.Logger) -> None:
    """Set the youngest generation's threshold to `threshold` (0: leave it), unless the
    app changed the collector's settings itself."""
    current = gc.get_threshold()
    if threshold <= 0 or not gc.isenabled() or current != _THRESHOLDS_BEFORE_APPS \
            or current[0] >= threshold:
        return
    gc.set_threshold(threshold, *current[1:])
    logger.debug("garbage collector threshold %d -> %d (GC_THRESHOLD)", current[0], threshold)

"""`-t N`: N worker processes, each with its share of the connections, requests and rate.

Each worker is forked, pinned to a core of its own when there are enough, runs
its share on its own event loop and sends its `RunStats` back over a pipe as
JSON; the parent merges them (histograms add exactly).  Ctrl-C reaches every
worker (one process group): each stops and sends what it has.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from qactuar.load.runner import deliver_stop_signals
from qactuar.load.stats import RunStats


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` whole shares that differ by at most one."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def run_workers(count: int, work: Callable[[int], tuple[RunStats, bool]]
                ) -> tuple[list[RunStats], bool]:
    """Run `work(index)` in `count` forked processes; their statistics, and whether any
    was interrupted."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    children: list[tuple[int, int]] = []
    for index in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_end)
            code = 0
            deliver_stop_signals(False)  # until the run's handlers are in place
            try:
                if len(cpus) >= count:
                    os.sched_setaffinity(0, {cpus[index]})
                stats, interrupted = work(index)
                payload: dict[str, Any] = {"stats": stats.to_dict(), "rows": stats.rows,
                                           "measure_from_ns": stats.measure_from_ns,
                                           "interrupted": interrupted}
                with os.fdopen(write_end, "w") as pipe:
                    json.dump(payload, pipe)
            except BaseException as exc:  # the parent reports a worker that failed
                print(f"qactuar load: worker {index}: {exc!r}", file=sys.stderr)
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    def forward(signum: int, frame: Any) -> None:
        # A signal to this process alone (kill, a CI runner's timeout) reaches the workers
        # too; Ctrl-C on a terminal reaches them already, and a second one changes nothing.
        for pid, _ in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = signal.signal(signal.SIGINT, forward)  # the workers report first
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        results = []
        interrupted = False
        for pid, read_end in children:
            with os.fdopen(read_end) as pipe:
                text = pipe.read()
            os.waitpid(pid, 0)
            if not text:
                raise RuntimeError("a worker process ended without results")
            payload = json.loads(text)
            stats = RunStats.from_dict(payload["stats"])
            stats.measure_from_ns = payload["measure_from_ns"]
            if payload["rows"] is not None:
                stats.rows = [tuple(row) for row in payload["rows"]]
            interrupted = interrupted or payload["interrupted"]
            results.append(stats)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    return results, interrupted

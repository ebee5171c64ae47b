"""RSS and CPU time of a process, read from /proc (Linux).

Two small reads per process: not worth a compiled dependency (psutil) for the
two numbers the admin plane shows.  Elsewhere the numbers are simply absent.
"""

from __future__ import annotations

import os
import time

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def sample(pid: int) -> dict[str, float] | None:
    """{"rss_bytes", "cpu_seconds", "at"} of `pid`, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # Fields after the command name (which may hold spaces), from field 3 on.
            fields = stat.read().rpartition(b")")[2].split()
        cpu_ticks = int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None
    return {"rss_bytes": resident_pages * _PAGE, "cpu_seconds": cpu_ticks / _TICKS,
            "at": time.monotonic()}


class Sampler:
    """The latest sample of each process and its CPU use since the one before."""

    def __init__(self) -> None:
        self.latest: dict[int, dict[str, float]] = {}
        self.cpu_percent: dict[int, float] = {}

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            now = sample(pid)
            if now is None:
                continue
            before = self.latest.get(pid)
            if before is not None and now["at"] > before["at"]:
                self.cpu_percent[pid] = round(100 * (now["cpu_seconds"] - before["cpu_seconds"])
                                              / (now["at"] - before["at"]), 1)
            self.latest[pid] = now
        for gone in set(self.latest) - set(pids):
            self.latest.pop(gone, None)
            self.cpu_percent.pop(gone, None)

    def fields(self, pid: int) -> dict[str, float | None]:
        latest = self.latest.get(pid)
        if latest is None:
            return {}
        return {"rss_bytes": latest["rss_bytes"], "cpu_seconds": latest["cpu_seconds"],
                "cpu_percent": self.cpu_percent.get(pid)}

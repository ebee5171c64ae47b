"""Run one load tool (wrk, h2load, wsload) to its end, timing it.

Owns what every load tool run shares: the subprocess, its wall time, the CPU
time it used (taken from this process's reaped children) and a loud failure
when it exits non-zero. Parsing each tool's report stays with its module.
"""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ToolRun:
    stdout: str
    wall_seconds: float
    cpu_seconds: float


def run_load_tool(name: str, command: list[str], timeout: float,
                  env: dict[str, str] | None = None, allowed_codes: tuple[int, ...] = (0,),
                  cwd: Path | None = None) -> ToolRun:
    """Run `command`; raise RuntimeError with the end of its output when it exits with a
    status not in `allowed_codes`."""
    before = _children_cpu_seconds()
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)
    wall = time.monotonic() - started
    if done.returncode not in allowed_codes:
        raise RuntimeError(f"{name} exited with {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return ToolRun(done.stdout, wall, _children_cpu_seconds() - before)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

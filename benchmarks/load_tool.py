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
    system_seconds: float = 0.0  # the part of cpu_seconds spent in the kernel


def run_load_tool(name: str, command: list[str], timeout: float,
                  env: dict[str, str] | None = None, allowed_codes: tuple[int, ...] = (0,),
                  cwd: Path | None = None) -> ToolRun:
    """Run `command`; raise RuntimeError with the end of its output when it exits with a
    status not in `allowed_codes`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=cwd)
    wall = time.monotonic() - started
    if done.returncode not in allowed_codes:
        raise RuntimeError(f"{name} exited with {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    system = after.ru_stime - before.ru_stime
    return ToolRun(done.stdout, wall, after.ru_utime - before.ru_utime + system, system)

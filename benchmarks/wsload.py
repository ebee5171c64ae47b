"""Build and run `wsload`, the WebSocket echo load client (wsload.c), and parse its report.

wsload opens CONNS connections, upgrades each, then on each connection sends a
masked text frame of SIZE bytes and waits for the echo (counted by its exact
length) before sending the next (or keeps DEPTH messages in flight per connection,
`depth` below); it measures SECONDS after a fixed 1 s
warm-up that starts once every connection is upgraded. It is compiled with
`gcc -O2` into `benchmarks/build/` (git-ignored) on first use, or when
wsload.c is newer than the binary. This module owns that command line only;
it must not decide whether a result passes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load_tool import run_load_tool

SOURCE = Path(__file__).resolve().parent / "wsload.c"
BINARY = Path(__file__).resolve().parent / "build" / "wsload"


@dataclass
class WsloadResult:
    """What one wsload run reports, plus its own CPU time and wall time."""

    messages_per_second: float  # over the measured window only
    messages: int  # every echo since the upgrades, warm-up included
    cpu_seconds: float  # wsload's own user + system time
    wall_seconds: float  # the whole run: connect, upgrade, warm-up, measure
    system_seconds: float = 0.0  # the kernel's part of cpu_seconds


def build() -> Path:
    """The wsload binary, compiled now if missing or older than its source."""
    if BINARY.exists() and BINARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BINARY
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc not found: the ws-echo scenario compiles benchmarks/wsload.c "
                           "(apt-get install gcc, or run without --no-install)")
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    command = ["gcc", "-O2", "-o", str(BINARY), str(SOURCE)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
    return BINARY


def run_wsload(port: int, connections: int, size: int, seconds: int, cpu: str,
               depth: int = 1) -> WsloadResult:
    """Load 127.0.0.1:`port` from CPUs `cpu` with `depth` messages in flight per
    connection; raise RuntimeError when wsload fails."""
    command = ["taskset", "-c", cpu, str(build()), "127.0.0.1", str(port),
               str(connections), str(size), str(seconds), "/", str(depth)]
    run = run_load_tool("wsload", command, timeout=seconds + 60)
    match = re.search(r"([\d.]+) msg/s .* total (\d+)", run.stdout)
    if match is None:
        raise RuntimeError(f"cannot parse wsload output: {run.stdout!r}")
    return WsloadResult(float(match.group(1)), int(match.group(2)), run.cpu_seconds,
                        run.wall_seconds, run.system_seconds)

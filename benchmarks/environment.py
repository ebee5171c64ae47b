"""Find or install what the benchmarks need, and describe the machine they ran on.

Missing Python peers are `pip install`ed (pinned by `requirements.txt`) into
the current interpreter; missing load tools come from Debian's `wrk` and
`nghttp2-client`, and `gcc` (which compiles the WebSocket load client
`wsload.c`) via apt-get. Every install is printed before it runs.
This module must not run benchmarks.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
# import name -> distribution name, for the packages each server needs.
MODULES = {"qactuar": [], "uvicorn": ["uvicorn", "httptools", "uvloop"],
           "granian": ["granian", "uvloop"], "hypercorn": ["hypercorn", "uvloop"],
           "daphne": ["daphne"], "limit": ["uvloop"], "qactuar-postfork": []}
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client", "gcc": "gcc"}


def pinned() -> dict[str, str]:
    """Distribution name -> its pinned requirement line."""
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    return {line.split("==")[0].lower(): line for line in lines
            if line and not line.startswith("#")}


def ensure_packages(servers: list[str], frameworks: set[str], need_websockets: bool) -> None:
    modules = {m for s in servers for m in MODULES.get(s, [])} | frameworks
    if need_websockets:  # the verification client, and uvicorn's WebSocket implementation
        modules.add("websockets")
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    if missing:
        command = [sys.executable, "-m", "pip", "install",
                   *(pinned().get(m, m) for m in missing)]
        print("installing missing peers:", " ".join(command), flush=True)
        subprocess.run(command, check=True)
        importlib.invalidate_caches()


def ensure_tools() -> None:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    command = ["apt-get", "install", "-y", *missing]
    if os.geteuid() != 0:
        command.insert(0, "sudo")
    print("installing missing load tools:", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def _version(distribution: str) -> str | None:
    if distribution == "qactuar":  # the worktree's code, installed or not
        import qactuar

        return qactuar.__version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tool_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "missing"
    done = subprocess.run(command, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].split(" Copyright")[0].strip() if lines else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=REQUIREMENTS.parent)
    return done.stdout.strip() or None


def describe(settings: dict[str, Any]) -> dict[str, Any]:
    """The machine, software versions and settings of this run (for the JSON and headers)."""
    packages = ["qactuar", *pinned()]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(), "cpus": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(), "git_commit": _git_commit(),
        "packages": {p: _version(p) for p in packages},
        "tools": {"wrk": _tool_version(["wrk", "-v"]),
                  "h2load": _tool_version(["h2load", "--version"]),
                  "gcc": _tool_version(["gcc", "--version"])},
        "settings": settings,
    }

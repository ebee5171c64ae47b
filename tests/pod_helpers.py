"""A running `qactuar pod run` process for tests/test_pod*.py, read line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import TESTS_DIR, CollectedProcess, child_env


def index_of(output: str, text: str) -> int:
    """Where `text` first stands in `output` (for asserting the order of log lines)."""
    position = output.find(text)
    assert position >= 0, f"{text!r} not in output:\n{output}"
    return position


def script_env(**extra: str) -> dict[str, str]:
    """Settings for a child run like the installed `qactuar` script: the current directory
    is not importable (run it with `python -P`; child_env's PYTHONPATH may end in an
    empty entry, which means the current directory)."""
    path = child_env()["PYTHONPATH"].split(os.pathsep)
    return {"PYTHONPATH": os.pathsep.join(entry for entry in path if entry), **extra}


class PodProcess(CollectedProcess):
    """`python -m qactuar pod run ARGS`, its output collected as it comes."""

    def __init__(self, *args: str, cwd: Path = TESTS_DIR, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        super().__init__(command or [sys.executable, "-m", "qactuar", "pod", "run", *args],
                         env, cwd)

    def wait_for(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """The first line matching `pattern`; fails after `timeout` or if the process ended."""
        return self.wait_for_log(pattern, timeout, fail_on_exit=True)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15) -> int:
        """Wait for the exit; kill and fail if it does not come within `timeout`."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"no exit within {timeout}s:\n{self.output}") from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_pod(*args: str, cwd: Path = TESTS_DIR, timeout: float = 15
            ) -> subprocess.CompletedProcess[str]:
    """Run `qactuar pod run ARGS` to its exit."""
    return subprocess.run([sys.executable, "-m", "qactuar", "pod", "run", *args],
                          env=child_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)

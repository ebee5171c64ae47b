"""The live progress line of `qactuar load`: rewritten each second on a terminal (a real one:
a tmux pane), absent when the output is a pipe."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from load_helpers import RawServer, hello, report_counts, run_load

from conftest import child_env, wait_until

TMUX = shutil.which("tmux")
PROGRESS = re.compile(r"\[\s*(\d+)s\] [\d,]+ done, [\d,]+ req/s, p99 \S+, [\d,]+ errors")


class Pane:
    """A private tmux server (its own socket) with one pane running a command."""

    def __init__(self, socket: Path, command: str) -> None:
        self.socket = str(socket)
        env = {**child_env(), "TERM": "xterm-256color"}
        subprocess.run([str(TMUX), "-S", self.socket, "new-session", "-d", "-x", "160",
                        "-y", "40", command], check=True, env=env, timeout=20)

    def text(self) -> str:
        return subprocess.run([str(TMUX), "-S", self.socket, "capture-pane", "-p"],
                              capture_output=True, text=True, timeout=20).stdout

    def close(self) -> None:
        subprocess.run([str(TMUX), "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=20)


@pytest.fixture
def pane_factory(tmp_path: Path) -> Iterator[list[Pane]]:
    panes: list[Pane] = []
    yield panes
    for pane in panes:
        pane.close()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_progress_line_updates_each_second_in_a_terminal(
        tmp_path: Path, pane_factory: list[Pane]) -> None:
    with RawServer(hello) as server:
        command = " ".join(shlex.quote(word) for word in [
            sys.executable, "-m", "qactuar.load", "-D", "3.5", "-c", "2", "--h1", "--rate",
            "200", server.url])
        pane = Pane(tmp_path / "tmux.sock", f"{command}; echo load-exited-$?; sleep 60")
        pane_factory.append(pane)
        seen: set[int] = set()

        def progress_seen() -> bool:
            seen.update(int(second) for second in PROGRESS.findall(pane.text()))
            return len(seen) >= 2

        wait_until(progress_seen, 20, "two different progress lines in the pane")
        wait_until(lambda: "load-exited-" in pane.text(), 20, "the run to end")
    final = pane.text()
    assert "load-exited-0" in final, final
    # One line rewritten in place, then erased before the report.
    assert not PROGRESS.search(final), final
    assert report_counts(final)["succeeded"] > 0
    assert min(seen) >= 1, seen  # a line per whole second of the run


def test_no_progress_line_in_a_pipe_unless_asked() -> None:
    with RawServer(hello) as server:
        piped = run_load("-D", "2.2", "-c", "4", "--h1", "--rate", "100", server.url)
        forced = run_load("-D", "2.2", "-c", "4", "--h1", "--rate", "100", "--progress",
                          server.url)
    # (the exit status is not the point: on a loaded machine a due request may be unsent)
    assert report_counts(piped.stdout)["succeeded"] and report_counts(forced.stdout)["succeeded"]
    assert not PROGRESS.search(piped.stdout) and "\r" not in piped.stdout, piped.stdout
    # The same run with --progress writes the lines: the check above can see them.
    assert len(PROGRESS.findall(forced.stdout)) >= 2, forced.stdout

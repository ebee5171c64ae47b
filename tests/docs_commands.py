"""Running the commands a docs page shows, as a user would type them, on a free port.

A shell line `[NAME=value ...] program args [# comment]` becomes an environment and an
argv, with `qactuar` and `python` the ones of this test run; a server that the line
does not place itself listens on 127.0.0.1:0 (`QACTUAR_HOST`/`QACTUAR_PORT`).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from conftest import ServerProcess, child_env

BIN_DIR = Path(sys.executable).parent
ON_A_FREE_PORT = {"QACTUAR_HOST": "127.0.0.1", "QACTUAR_PORT": "0"}


def command_line(line: str) -> tuple[dict[str, str], list[str]]:
    """A shell line `[NAME=value ...] program args [# comment]` as (environment, argv),
    with `qactuar` and `python` the ones of this test run."""
    words = shlex.split(line, comments=True)
    env: dict[str, str] = {}
    while words and re.match(r"[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if words[0] in ("python", "python3"):
        words[0] = sys.executable
    else:
        found = shutil.which(words[0], path=f"{BIN_DIR}:/usr/sbin:/usr/bin:/bin")
        assert found is not None, f"{words[0]} is not installed"
        words[0] = found
    return env, words


def serve_line(line: str, cwd: Path, **env: str) -> ServerProcess:
    """Start the server a documented command line starts, and wait until it listens."""
    line_env, argv = command_line(line)
    return ServerProcess([], cwd=cwd, command=argv, env={**ON_A_FREE_PORT, **env, **line_env})


def run_line(line: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    line_env, argv = command_line(line)
    return subprocess.run(argv, cwd=cwd, env=child_env(**line_env), input=stdin,
                          capture_output=True, text=True, timeout=30)


def talk_until(line: str, said: str, answer: str, timeout: float = 20) -> bool:
    """Run an interactive client line, type `said`, and wait until it prints `answer`."""
    line_env, argv = command_line(line)
    client = subprocess.Popen(argv, env=child_env(**line_env), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = threading.Timer(timeout, client.kill)
    deadline.start()
    try:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(said + "\n")
        client.stdin.flush()
        return any(answer in printed for printed in client.stdout)  # EOF once killed
    finally:
        deadline.cancel()
        client.kill()
        client.wait()


def app_module(path: Path, answer: str) -> None:
    """A module file whose `app` answers every HTTP request with `answer`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        f"    await send({{'type': 'http.response.body', 'body': {answer.encode()!r}}})\n")


def lines_of(block: str) -> list[str]:
    """The command lines of a bash block (continuations joined, comment lines dropped)."""
    joined = block.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]

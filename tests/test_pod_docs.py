"""docs/pod.md runs as written: its `# file:` blocks are written to a directory, each
```bash command is run there, and the lines of the ```text block after it must appear
in its output.  The os-aio-pod README's examples are among them, changed only in their
import lines (and dotted paths)."""

from __future__ import annotations

import re
import shlex
import signal
import sys
import time
from pathlib import Path

from docs_examples import code_blocks
from pod_helpers import PodProcess, script_env

PAGE = "pod.md"
FILE_HEADER = re.compile(r"# file: (\S+)\n")
EXIT_LINE = re.compile(r"\(exit status (\d+)\)")


def write_files(directory: Path) -> list[str]:
    names = []
    for language in ("python", "toml"):
        for block in code_blocks(PAGE, language):
            header = FILE_HEADER.match(block)
            assert header, f"a ```{language} block of docs/{PAGE} names no file:\n{block}"
            (directory / header.group(1)).write_text(block)
            names.append(header.group(1))
    return names


def test_every_example_of_the_pod_page_runs_as_documented(tmp_path: Path) -> None:
    files = write_files(tmp_path)
    assert {"hello.py", "hello_world.py", "config.py", "with_context.py",
            "simple_example.py", "pcflow_example.py"} <= set(files)
    commands = code_blocks(PAGE, "bash")
    expectations = code_blocks(PAGE, "text")
    assert len(commands) == len(expectations) >= 10
    runs = []
    for command, expected in zip(commands, expectations, strict=True):
        argv = shlex.split(command.strip())
        assert argv[0] == "qactuar", command
        # -P: the current directory is not on sys.path, as with the installed script.
        process = PodProcess(command=[sys.executable, "-P", "-m", "qactuar", *argv[1:]],
                             cwd=tmp_path, env=script_env(QACTUAR_HOST="127.0.0.1",
                                                          QACTUAR_PORT="0"))
        runs.append((command.strip(), expected, process))
    try:
        for command, expected, process in runs:
            status = 0
            for line in expected.strip().splitlines():
                exit_line = EXIT_LINE.fullmatch(line)
                if exit_line:
                    status = int(exit_line.group(1))
                    continue
                process.wait_for(re.escape(line), timeout=20)
            if process.proc.poll() is None:
                process.signal(signal.SIGINT)
            assert process.wait() == status, f"{command}:\n{process.output}"
            assert "Traceback" not in process.output or status, f"{command}:\n" \
                f"{process.output}"
    finally:
        for _, _, process in runs:
            process.kill()


def test_the_repl_example_answers_over_its_socket(tmp_path: Path) -> None:
    import socket

    write_files(tmp_path)
    process = PodProcess("-c", "repl_config.py", cwd=tmp_path)
    try:
        process.wait_for("REPL")
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(tmp_path / "repl.sock"))
            received = b""
            deadline = time.monotonic() + 5
            client.sendall(b"[b.label for b in pod.beans]\n")
            while received.count(b">>> ") < 2 and time.monotonic() < deadline:
                received += client.recv(4096)
        # The page's transcript, without the typed input (a socket does not echo it).
        transcript = code_blocks(PAGE, "console")[0].splitlines()
        banner, typed, answer = transcript[1], transcript[2], transcript[3]
        assert typed == ">>> [b.label for b in pod.beans]"
        assert received.decode() == f"{banner}\n>>> {answer}\n>>> "
        process.signal(signal.SIGTERM)
        assert process.wait() == 0
    finally:
        process.kill()

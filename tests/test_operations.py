"""Operating the server: signals around lifespan, start-up errors, run() off the main thread.

Every server here is a real `qactuar` process.  A test that waits for the app
to reach a point waits for a marker line the app prints (see
`apps/operations_app.py`), never for a fixed time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import (
    LISTENING,
    TESTS_DIR,
    ServerFactory,
    ServerProcess,
    assert_one_line_error,
    can_bind_ipv6,
    child_env,
    run_qactuar,
)

EXIT_DEADLINE = 10  # seconds; far below the timeouts the servers below are given


class StartingProcess(ServerProcess):
    """A process whose output is followed from its first line, listening or not."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None,
                 cwd: Path = TESTS_DIR) -> None:
        self.args = command
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=child_env(**(env or {})), cwd=str(cwd), text=True,
                                     errors="replace")
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.scheme, self.host, self.port = "http", "127.0.0.1", 0

    def wait_listening(self, timeout: float = 15) -> None:
        match = self.wait_for_log(LISTENING, timeout=timeout, fail_on_exit=True)
        self.scheme, self.host, self.port = match.group(1), match.group(2).strip("[]"), \
            int(match.group(3))

    def exit_status(self, timeout: float = EXIT_DEADLINE) -> int | None:
        """The exit status, or None if the process is still running after `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


@pytest.fixture
def processes() -> Iterator[list[StartingProcess]]:
    started: list[StartingProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def qactuar(processes: list[StartingProcess], *args: str,
            env: dict[str, str] | None = None) -> StartingProcess:
    process = StartingProcess([sys.executable, "-m", "qactuar", *args,
                               "--host", "127.0.0.1", "--port", "0"], env=env)
    processes.append(process)
    return process




# -- signals while an app's lifespan is starting or stopping -------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_during_a_hanging_lifespan_startup_stops_the_server(
        processes: list[StartingProcess], signum: int) -> None:
    server = qactuar(processes, "apps.operations_app:hanging_startup_app")
    server.wait_for_log("OPERATIONS startup begun", fail_on_exit=True)
    server.send_signal(signum)
    server.wait_for_log(f"Received {signal.Signals(signum).name}")
    status = server.exit_status()
    assert status is not None, f"still running {EXIT_DEADLINE}s after the signal:\n" \
        + server.output
    assert "Listening on" not in server.output


def test_zero_shutdown_timeout_does_not_wait_forever_for_lifespan_shutdown(
        processes: list[StartingProcess]) -> None:
    server = qactuar(processes, "apps.operations_app:hanging_shutdown_app",
                     "--shutdown-timeout", "0")
    server.wait_listening()
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("OPERATIONS shutdown begun")
    status = server.exit_status()
    assert status is not None, "SHUTDOWN_TIMEOUT 0 waited without limit for the app's " \
        "lifespan shutdown:\n" + server.output


def test_a_second_signal_skips_waiting_for_a_hanging_lifespan_shutdown(
        processes: list[StartingProcess]) -> None:
    server = qactuar(processes, "apps.operations_app:hanging_shutdown_app",
                     "--shutdown-timeout", "120")
    server.wait_listening()
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("OPERATIONS shutdown begun")
    server.send_signal(signal.SIGTERM)
    server.wait_for_log("SIGTERM again")
    status = server.exit_status()
    assert status is not None, "a second signal did not skip the wait:\n" + server.output


# -- LIFESPAN=on: "the app must support it" ------------------------------------------------

def test_lifespan_on_refuses_an_app_that_returns_without_starting(
        processes: list[StartingProcess]) -> None:
    # operations_app:app is the README's example: it returns at once on a lifespan scope.
    server = qactuar(processes, "apps.operations_app:app", "--lifespan", "on")
    try:
        server.wait_for_log(LISTENING, timeout=EXIT_DEADLINE, fail_on_exit=True)
    except AssertionError:  # exited (or hung) without serving: what LIFESPAN=on promises
        status = server.exit_status(0)
        assert status is not None and status != 0, server.output
    else:
        pytest.fail("LIFESPAN=on served an app that does not support lifespan:\n"
                    + server.output)


# -- start-up errors are one line and exit 2 ----------------------------------------------

def test_an_app_module_with_a_broken_import_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken_import.py").write_text(
        "from os import no_such_name\n\n\nasync def app(scope, receive, send):\n    pass\n")
    result = run_qactuar("broken_import:app", "--app-dir", str(tmp_path), "--port", "0")
    line = assert_one_line_error(result)
    assert "broken_import" in line and "no_such_name" in line


@pytest.mark.parametrize("host", ["api..example.com", "a" * 64 + ".example.com"],
                         ids=["empty-label", "label-over-63"])
def test_a_malformed_host_name_is_one_line_and_exit_2(host: str) -> None:
    result = run_qactuar("apps.basic:app", "--host", host, "--port", "0")
    line = assert_one_line_error(result)
    assert "HOST" in line


# -- run() from a thread other than the main one -------------------------------------------

THREAD_SCRIPT = textwrap.dedent("""
    import threading

    import qactuar


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served from a thread"})


    thread = threading.Thread(target=qactuar.run,
                              kwargs={"app": app, "host": "127.0.0.1", "port": 0})
    thread.start()
    thread.join()
    print("run() ended", flush=True)
""")


def test_run_in_a_thread_other_than_the_main_one_serves(
        processes: list[StartingProcess], tmp_path: Path) -> None:
    # As with uvicorn's Server.run in a thread (common in test suites): no signal
    # handlers can be installed there, but the server must still serve.
    script = tmp_path / "serve_in_thread.py"
    script.write_text(THREAD_SCRIPT)
    server = StartingProcess([sys.executable, str(script)], cwd=tmp_path)
    processes.append(server)
    server.wait_listening()
    response = httpx.get(f"{server.url}/", timeout=5)
    assert response.text == "served from a thread"


@pytest.mark.skipif(not can_bind_ipv6("::"), reason="this machine has no IPv6")
def test_ipv6_wildcard_host_also_accepts_ipv4(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app", host="::")
    response = httpx.get(f"http://127.0.0.1:{server.port}/hello", timeout=5)
    assert response.text == "Hello, world!"

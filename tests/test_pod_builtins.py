"""The built-in beans, each in a real `qactuar pod run` with real clients: the TCP
server adapter (event-driven and protocol modes), the REPL over its Unix socket,
producer-consumer, the simple scaffold and Qactuar's HTTP server as a bean."""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import textwrap
import time
from pathlib import Path

import httpx

from conftest import ServerProcess, assert_one_line_error, wait_until
from pod_helpers import PodProcess, run_pod
from qactuar.pod import EXIT_BEAN_RAISED

ADAPTER = "qactuar.pod.builtins.tcp_server.TCPServerAdapter"


def tcp_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(data)
        received = b""
        while chunk := client.recv(4096):
            received += chunk
    return received


def test_tcp_adapter_event_driven_and_protocol_modes(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        BEANS = [
            {{"core": "{ADAPTER}", "label": "shout", "port": 0,
              "server": "apps.pod_builtin_beans.Shout", "greeting": "hi"}},
            {{"core": "{ADAPTER}", "label": "reverse", "port": 0,
              "protocol": "apps.pod_builtin_beans.ReverseProtocol"}},
        ]
    """))
    pod = PodProcess("-c", str(tmp_path / "config.py"))
    try:
        shout = int(pod.wait_for(r"TCP server \(bean #1\) listening on 127.0.0.1:(\d+)")[1])
        reverse = int(pod.wait_for(r"TCP server \(bean #2\) listening on 127.0.0.1:(\d+)")[1])
        assert tcp_request(shout, b"hello\n") == b"HELLO\nhi #1\n"
        assert tcp_request(shout, b"again\n") == b"AGAIN\nhi #2\n"
        assert tcp_request(reverse, b"stressed\n") == b"desserts via Server\n"
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0  # no STOP_WAIT_TIME needed: the adapter stops on the signal
    finally:
        pod.kill()
    assert "BEAN shout got SIGTERM" in pod.output
    assert "BEAN shout cleaned up after 2 connection(s)" in pod.output
    assert "Cancelling" not in pod.output


def test_repl_on_a_0600_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "repl.sock"
    (tmp_path / "config.py").write_text(textwrap.dedent(f"""
        BEANS = [
            {{"core": "apps.pod_beans.Counter", "label": "counter"}},
            {{"core": "qactuar.pod.builtins.repl.REPLServer", "path": {str(path)!r}}},
        ]
        STOP_WAIT_TIME = 1
    """))
    pod = PodProcess("-c", str(tmp_path / "config.py"))
    try:
        pod.wait_for("REPL")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            buffered = b""

            def answer(line: bytes) -> str:
                nonlocal buffered
                if line:
                    client.sendall(line)
                while not buffered.endswith((b">>> ", b"... ")):
                    buffered += client.recv(4096)
                text, buffered = buffered.decode(), b""
                return text[:-4]

            assert answer(b"").startswith("qactuar pod REPL")
            assert answer(b"pod.get_bean('counter').instance.count > 0\n") == "True\n"
            assert answer(b"await asyncio.sleep(0.01)\n") == ""
            assert answer(b"import os; os.getpid()\n") == f"{pod.proc.pid}\n"
            assert answer(b"for n in range(2):\n") == ""  # a "... " continuation prompt
            assert answer(b"    print(n * 10)\n") == ""
            assert answer(b"\n") == "0\n10\n"
            error = answer(b"pod.get_bean('nope')\n")
            assert "UnknownBean: no bean has the label 'nope'" in error
            assert 'File "<repl>", line 1' in error and "repl.py" not in error
            assert answer(b"1 +\n").endswith("SyntaxError: invalid syntax\n")
            assert answer(b"context.label, context.id\n") == "(None, 2)\n"
        pod.signal(signal.SIGTERM)
        assert pod.wait() == 0
    finally:
        pod.kill()
    assert not path.exists()  # the socket file goes with the bean
    assert "REPL (bean #2) on unix:" in pod.output


def test_repl_without_a_path_is_refused_at_start() -> None:
    line = assert_one_line_error(run_pod("qactuar.pod.builtins.repl.REPLServer"))
    assert "missing a required argument: 'path'" in line


def test_producer_consumer_logs_a_failing_item_and_goes_on() -> None:
    result = run_pod("apps.pod_builtin_beans.Numbers:count=5,consumer_num=2,queue_size=1")
    assert result.returncode == 0, result.stdout + result.stderr
    consumed = sorted(int(line.split()[-1]) for line in result.stdout.splitlines()
                      if line.startswith("BEAN consumed"))
    assert consumed == [0, 1, 3, 4]
    assert "Numbers.consume(2) raised" in result.stderr
    assert "ValueError: two is bad" in result.stderr
    assert result.stdout.rstrip().endswith("Pod stopped")
    assert "BEAN numbers done" in result.stdout


def test_simple_scaffold_runs_cleanup_when_run_raises() -> None:
    result = run_pod("apps.pod_builtin_beans.Failing")
    assert result.returncode == EXIT_BEAN_RAISED, result.stdout + result.stderr  # the run raised
    assert result.stdout.index("BEAN failing startup") < \
        result.stdout.index("BEAN failing cleanup ran")
    assert "RuntimeError: run failed" in result.stderr


def test_http_server_bean_serves_a_starlette_app_that_reads_another_bean(
        tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(textwrap.dedent("""
        BEANS = [
            {"core": "apps.pod_beans.Counter", "label": "counter"},
            {"core": "qactuar.pod.builtins.http.HTTPServer", "label": "web",
             "app": "apps.pod_app:app", "host": "127.0.0.1", "port": 0},
        ]
        STOP_WAIT_TIME = 2
    """))
    server = ServerProcess([], command=[sys.executable, "-m", "qactuar", "pod", "run", "-c",
                                        str(tmp_path / "config.py")])
    try:
        wait_until(lambda: httpx.get(f"{server.url}/counter").json()["count"] > 0,
                   what="the app to see the counter move")
        reply = httpx.get(f"{server.url}/counter").json()
        assert reply["state"] == "running" and reply["same_pod"] is True
        started = time.monotonic()
        assert server.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 2 + 3
    finally:
        server.stop()
    out = server.output
    assert "BEAN counter 1 got SIGINT" in out
    assert out.index("Shutting down") < out.index("APP shutdown")
    assert "Cancelling" not in out  # the server bean stopped on the signal itself


def test_repl_never_replaces_a_file_or_a_live_socket_at_its_path(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    live = tmp_path / "live.sock"
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as listening, socket.socket(socket.AF_UNIX) as dead:
        listening.bind(str(live))
        listening.listen()
        dead.bind(str(stale))  # bound, never listening: what a killed process leaves
        (tmp_path / "config.py").write_text(textwrap.dedent(f"""
            BEANS = [
                {{"core": "qactuar.pod.builtins.repl.REPLServer", "path": {str(precious)!r}}},
                {{"core": "qactuar.pod.builtins.repl.REPLServer", "path": {str(live)!r}}},
                {{"core": "qactuar.pod.builtins.repl.REPLServer", "path": {str(stale)!r},
                  "label": "stale"}},
            ]
            STOP_WAIT_TIME = 1
        """))
        pod = PodProcess("-c", str(tmp_path / "config.py"))
        try:
            pod.wait_for(r"REPL \(bean #3\) on unix:")
            pod.wait_for("another process listens on it")
            pod.signal(signal.SIGTERM)
            assert pod.wait() == 0
        finally:
            pod.kill()
        assert precious.read_text() == "keep me"
        assert stat.S_ISSOCK(os.stat(live).st_mode)
    out = pod.output
    assert f"FileExistsError: REPL path {precious} exists and is not a socket" in out
    assert f"FileExistsError: REPL path {live}: another process listens on it" in out

"""Binding, under every process model: Unix sockets (with a mode), inherited file
descriptors, systemd socket activation, several binds at once, bad binds."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    MODEL_ARGS,
    ServerFactory,
    ServerProcess,
    assert_one_line_error,
    can_bind_ipv6,
    fetch,
    read_response,
    run_qactuar,
    wait_until,
)

APP = "apps.process_app:app"
ALL_MODELS = pytest.mark.parametrize("model", list(MODEL_ARGS))


def unix_get(path: Path, target: str = "/pid") -> tuple[bytes, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        status, _, body = read_response(sock)
    return status, body


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@ALL_MODELS
def test_unix_socket_with_mode_beside_tcp(tmp_path: Path, model: str) -> None:
    path = tmp_path / "qactuar.sock"
    server = ServerProcess([APP, *MODEL_ARGS[model], "--bind", "127.0.0.1:0",
                            "--uds", str(path), "--uds-mode", "660"])
    try:
        server.wait_for_log(rf"Listening on unix:{path}|bound .*unix:{path}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        status, body = unix_get(path)
        assert status.startswith(b"HTTP/1.1 200") and int(body) > 0
        assert fetch(server, "/pid")[0] == 200  # the TCP bind serves too
    finally:
        assert server.stop() == 0
    assert not path.exists()  # removed at exit


@pytest.mark.skipif(not can_bind_ipv6("::1"), reason="this machine has no IPv6 loopback")
@ALL_MODELS
def test_ipv6_bind(model: str) -> None:
    server = ServerProcess([APP, *MODEL_ARGS[model], "--bind", "[::1]:0"])
    try:
        assert server.host == "::1"
        assert fetch(server, "/pid")[0] == 200
    finally:
        assert server.stop() == 0


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, as after a crash
    server = ServerProcess([APP, "--bind", f"127.0.0.1:0,unix:{path}"])
    try:
        assert unix_get(path)[0].startswith(b"HTTP/1.1 200")
    finally:
        server.stop()


@ALL_MODELS
def test_an_inherited_file_descriptor(model: str) -> None:
    listener = listening_socket()
    with listener:
        server = ServerProcess([APP, *MODEL_ARGS[model], "--fd", str(listener.fileno())],
                               pass_fds=(listener.fileno(),))
        try:
            assert server.port == listener.getsockname()[1]
            assert fetch(server, "/pid")[0] == 200
        finally:
            assert server.stop() == 0


def test_systemd_socket_activation() -> None:
    listener = listening_socket()
    # systemd sets LISTEN_PID to the pid it starts and passes sockets from fd 3:
    # the wrapper does both, then becomes qactuar (exec keeps the pid).
    launcher = (
        "import os, sys\n"
        f"os.dup2({listener.fileno()}, 3)\n"
        "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
        f"os.execv(sys.executable, [sys.executable, '-m', 'qactuar', {APP!r}])\n"
    )
    with listener:
        server = ServerProcess([], command=[sys.executable, "-c", launcher],
                               pass_fds=(listener.fileno(),))
        try:
            assert server.port == listener.getsockname()[1]
            assert fetch(server, "/pid")[0] == 200
        finally:
            assert server.stop() == 0


def test_systemd_sockets_meant_for_another_process_are_ignored() -> None:
    server = ServerProcess([APP, "--host", "127.0.0.1", "--port", "0"],
                           env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    try:
        assert fetch(server, "/pid")[0] == 200  # bound HOST/PORT instead
    finally:
        server.stop()


def test_several_tcp_binds_at_once() -> None:
    first, second = listening_socket(), listening_socket()
    ports = [first.getsockname()[1], second.getsockname()[1]]
    first.close()
    second.close()
    server = ServerProcess([APP, "--bind", f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}",
                            "--backlog", "64", "--reuse-port"])
    try:
        for port in ports:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                assert fetch(server, "/pid", sock=sock)[0] == 200
        # SO_REUSEPORT: another server may bind the same port beside this one.
        with socket.socket() as beside:
            beside.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            beside.bind(("127.0.0.1", ports[0]))
    finally:
        server.stop()


def listen_queue(*ss_args: str) -> list[str]:
    """The fields of the one listening socket `ss -H -l ARGS` reports."""
    lines = subprocess.run(["ss", "-H", "-l", *ss_args], capture_output=True, text=True,
                           check=True, timeout=10).stdout.splitlines()
    assert len(lines) == 1, lines
    return lines[0].split()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@ALL_MODELS
def test_backlog_sets_the_listen_queue_of_tcp_and_unix_sockets(tmp_path: Path,
                                                              model: str) -> None:
    path = tmp_path / "backlog.sock"
    server = ServerProcess([APP, *MODEL_ARGS[model], "--bind", "127.0.0.1:0", "--uds",
                            str(path), "--backlog", "37"])
    try:
        # Every worker listening (it sets the backlog again when it starts).
        server.wait_for_log(r"Listening on unix:.*pid|bound .*unix:")
        if model == "prefork":
            wait_until(lambda: sum(f"Listening on unix:{path}" in line
                                   for line in server.lines) == 2, what="both workers")
        # For a listening socket, ss shows the backlog as its Send-Q.
        state, _, send_q = listen_queue("-tn", f"sport = :{server.port}")[:3]
        assert (state, send_q) == ("LISTEN", "37")
        _, state, _, send_q = listen_queue("-x", "src", str(path))[:4]
        assert (state, send_q) == ("LISTEN", "37")
    finally:
        assert server.stop() == 0


def test_without_reuse_port_the_port_is_ours_alone(start_server: ServerFactory) -> None:
    server = start_server(APP)
    with socket.socket() as beside, pytest.raises(OSError):
        beside.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        beside.bind(("127.0.0.1", server.port))


@pytest.mark.parametrize(("args", "message"), [
    (["--fd", "97"], "config key FD: file descriptor 97 is not a socket we can use"),
    (["--bind", "nonsense"], "config key BIND = 'nonsense': expected comma-separated"),
    (["--uds-mode", "999"], "config key UDS_MODE = '999': expected an octal file mode"),
    (["--uds", "/nonexistent-dir/x.sock"], "cannot listen on unix:/nonexistent-dir/x.sock"),
    (["--workers", "-1"], "config key WORKERS = -1: expected an integer, 0 for one per CPU"),
])
def test_bad_binds_are_one_line_errors(args: list[str], message: str) -> None:
    line = assert_one_line_error(run_qactuar(APP, *args))
    assert message in line, line


def test_a_file_descriptor_that_is_not_listening_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as file:
        fd = file.fileno()
        os.set_inheritable(fd, True)
        result = run_qactuar(APP, "--fd", str(fd))
    assert "not a socket we can use" in assert_one_line_error(result)

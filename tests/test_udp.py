"""UDP apps (UDP_BINDS, the `udp` scope): echo, shared lifespan state, bounded queue with
counted drops, one client's datagrams on one prefork worker, and the start-up error for
an app that does not take the scope."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from conftest import ServerProcess, child_env, run_qactuar, wait_until

UDP_LINE = re.compile(r"UDP app on udp://([\d.]+):(\d+)")
ADMIN_LINE = re.compile(r"Admin plane on http://([\d.]+):(\d+)")


def start(*args: str, **env: str) -> tuple[ServerProcess, int]:
    """A server with the UDP echo on UDP_BINDS (and `env` added); (process, UDP port)."""
    process = ServerProcess(["apps.h3_app:app", "--host", "127.0.0.1", "--port", "0",
                             "--admin", "--admin-port", "0", "--no-access-log", *args],
                            env={"QACTUAR_UDP_BINDS": "127.0.0.1:0", **env})
    return process, int(process.wait_for_log(UDP_LINE).group(2))


def ask(port: int, data: bytes, sock: socket.socket | None = None) -> bytes:
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(5)
        sock.sendto(data, ("127.0.0.1", port))
        return sock.recv(65536)
    finally:
        if own:
            sock.close()


def counter(process: ServerProcess, event: str) -> int:
    host, port = process.wait_for_log(ADMIN_LINE).groups()
    text = httpx.get(f"http://{host}:{port}/metrics", timeout=5).text
    match = re.search(rf'qactuar_datagram_events_total\{{event="{event}"\}} (\d+)', text)
    return int(match.group(1)) if match else -1


def test_echo_with_the_lifespan_state_shared_with_http() -> None:
    process, port = start()
    try:
        pid = str(process.proc.pid).encode()
        assert ask(port, b"hello") == pid + b" hello"
        assert b"started" in ask(port, b"state").split(b",")
        assert httpx.get(f"{process.url}/pid", timeout=5).text == str(process.proc.pid)
        refused = ask(port, b"bad-send")
        assert refused == b"refused: ASGI app sent udp.send whose data is not bytes"
        assert counter(process, "udp_bad_send") == 1
    finally:
        assert process.stop() == 0
    assert "Traceback" not in process.output


def test_no_loss_below_the_queue_bound_and_drops_counted_above_it() -> None:
    process, port = start(QACTUAR_UDP_QUEUE_SIZE="100")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(5)
        for index in range(60):  # below the bound: every one answered
            sock.sendto(b"n%d" % index, ("127.0.0.1", port))
        answers = {sock.recv(100).split(b" ", 1)[1] for _ in range(60)}
        assert answers == {b"n%d" % index for index in range(60)}
        assert counter(process, "udp_queue_drops") == 0
        sock.sendto(b"stall", ("127.0.0.1", port))  # the app stops reading for 2 s
        for index in range(400):
            sock.sendto(b"f%d" % index, ("127.0.0.1", port))
        wait_until(lambda: counter(process, "udp_queue_drops") > 0, 10, "counted drops")
        # still serving once the app reads again
        sock.settimeout(10)
        while not sock.recv(100).endswith(b" f99"):
            pass  # the queued hundred, then the echo of our probe below
        assert ask(port, b"after").endswith(b" after")
    finally:
        sock.close()
        assert process.stop() == 0
    assert process.output.count("UDP receive queue full") == 1  # logged once


@pytest.mark.timeout(60)
def test_one_clients_datagrams_stay_on_one_prefork_worker() -> None:
    process, port = start("--model", "prefork", "--workers", "4")
    try:
        wait_until(lambda: len(UDP_LINE.findall(process.output)) == 4, 20, "four workers")
        seen_by_client = []
        for _ in range(8):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                pids = {ask(port, b"x%d" % i, sock).split(b" ")[0] for i in range(10)}
            finally:
                sock.close()
            assert len(pids) == 1  # every datagram of this client: one worker
            seen_by_client += pids
        assert len(set(seen_by_client)) > 1  # and clients are spread over workers
    finally:
        assert process.stop() == 0


def test_an_app_without_the_udp_scope_is_a_start_up_error() -> None:
    result = run_qactuar("apps.h3_app:http_only", "--host", "127.0.0.1", "--port", "0",
                         env=child_env(QACTUAR_UDP_BINDS="127.0.0.1:0"))
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "does not handle the 'udp' scope" in output
    assert "Traceback" not in output
    assert "Listening on" not in output

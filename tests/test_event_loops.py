"""The core HTTP/1.1 behaviour on both event loops LOOP can choose.

The rest of the suite runs on the default (uvloop when installed); this module
repeats representative checks with `--loop asyncio` and `--loop uvloop`, since
the two loops differ in transports, flow control and EOF handling.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import httpx
import pytest

from conftest import ServerProcess, child_env, read_response, recv_until_closed, run_qactuar


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def loop_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.basic:app", "--loop", request.param,
                            "--host", "127.0.0.1", "--port", "0"])
    yield server
    assert server.stop() == 0


def test_the_chosen_loop_is_used(loop_server: ServerProcess) -> None:
    loop = loop_server.args[loop_server.args.index("--loop") + 1]
    loop_server.wait_for_log(f"async model, {loop} loop")


def test_pipelined_requests_in_order(loop_server: ServerProcess) -> None:
    with loop_server.connect() as sock:
        sock.sendall(b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     b"GET /stream?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[2] == b"slept"
        assert read_response(sock)[2] == b"abc"
        _, headers, body = read_response(sock)
        assert headers[b"transfer-encoding"] == b"chunked"
        assert body == b"chunk-0\nchunk-1\n"


def test_chunked_request_body_and_continue(loop_server: ServerProcess) -> None:
    with loop_server.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        status, _, _ = read_response(sock)
        assert status == b"HTTP/1.1 100 Continue"
        sock.sendall(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert read_response(sock)[2] == b"abcde"


def test_large_body_round_trip(loop_server: ServerProcess) -> None:
    payload = bytes(range(256)) * 20000  # 5 MB, more than the transports buffer
    response = httpx.post(f"{loop_server.url}/echo", content=payload, timeout=30)
    assert response.content == payload


def test_half_closed_client_still_gets_its_answer(loop_server: ServerProcess) -> None:
    with loop_server.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        raw = recv_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert raw.endswith(b"Hello, world!")


def test_bad_request_closes(loop_server: ServerProcess) -> None:
    with loop_server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\n\r\n")
        raw = recv_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request")
    assert raw.count(b"HTTP/1.1") == 1


@pytest.fixture
def without_uvloop(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PYTHONPATH entry whose `uvloop` module fails to import, as if it were absent."""
    folder = tmp_path_factory.mktemp("no_uvloop")
    (folder / "uvloop.py").write_text("raise ImportError('uvloop is not installed')\n")
    return str(folder)


def test_auto_falls_back_to_asyncio_without_uvloop(start_server, without_uvloop: str) -> None:
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([without_uvloop, env["PYTHONPATH"]])
    server = start_server("apps.basic:app", env=env)
    server.wait_for_log("async model, asyncio loop")
    assert httpx.get(f"{server.url}/hello").text == "Hello, world!"


def test_asking_for_uvloop_without_it_is_one_line_and_exit_2(without_uvloop: str) -> None:
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([without_uvloop, env["PYTHONPATH"]])
    result = run_qactuar("apps.basic:app", "--port", "0", "--loop", "uvloop", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "qactuar: error: config key LOOP = 'uvloop': uvloop is not installed"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_task_factory_the_app_installs_is_used(loop: str) -> None:
    # The server makes request tasks itself (cheaper) only while no factory is set.
    server = ServerProcess(["apps.task_factory_app:app", "--loop", loop,
                            "--host", "127.0.0.1", "--port", "0"])
    try:
        assert httpx.get(f"{server.url}/").text == "factory"
    finally:
        assert server.stop() == 0

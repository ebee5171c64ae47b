"""File bodies: the `http.response.pathsend` and `http.response.zerocopysend` ASGI
extensions (qactuar/asgi/file_body.py), over plain TCP (os.sendfile) and TLS (copied).

The real server, real clients (raw sockets for exact bytes, httpx over TLS).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import httpx
import pytest

from conftest import (
    ServerProcess,
    read_response,
    wait_until,
    write_random_files,
    write_tls_files,
)
from docs_examples import code_blocks

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # "large" is more than any socket buffer
    return write_random_files(tmp_path_factory.mktemp("files"), large_mib=64)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.file_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield process
    process.stop()


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def answer(sock: socket.socket, head_only: bool = False) -> Answer:
    status_line, headers, body = read_response(sock, timeout=10, head_only=head_only)
    return Answer(int(status_line.split()[1]),
                  {name.decode(): value.decode() for name, value in headers.items()}, body)


def get(server: ServerProcess, target: str, method: str = "GET") -> Answer:
    with server.connect(timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        return answer(sock, head_only=method == "HEAD")


def file_target(route: str, path: Path, **query: int) -> str:
    extra = "".join(f"&{key}={value}" for key, value in query.items())
    return f"{route}?file={quote(str(path))}{extra}"


def test_the_extensions_are_advertised(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/extensions")
    assert {"http.response.pathsend", "http.response.zerocopysend"} <= set(response.json())


def test_a_one_mib_file_arrives_intact(server: ServerProcess, files: dict[str, Path]) -> None:
    response = get(server, file_target("/path", files["one"]))
    assert response.status == 200
    assert response.headers["content-length"] == str(MIB)
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(
        files["one"].read_bytes()).digest()


def test_without_a_content_length_the_server_adds_it(server: ServerProcess,
                                                     files: dict[str, Path]) -> None:
    response = get(server, file_target("/path-no-length", files["one"]))
    assert response.status == 200
    assert response.headers["content-length"] == str(MIB)
    assert "transfer-encoding" not in response.headers
    assert response.body == files["one"].read_bytes()


def test_keep_alive_continues_after_a_file(server: ServerProcess, files: dict[str, Path]) -> None:
    data = files["one"].read_bytes()
    with server.connect(timeout=10) as sock:
        for _ in range(3):
            sock.sendall(f"GET {file_target('/path', files['one'])} HTTP/1.1\r\n"
                         "Host: t\r\n\r\n".encode())
            response = answer(sock)
            assert response.status == 200 and response.body == data


def test_head_sends_the_head_only(server: ServerProcess, files: dict[str, Path]) -> None:
    for route in ("/path", "/path-no-length"):
        response = get(server, file_target(route, files["one"]), method="HEAD")
        assert response.status == 200
        assert response.headers["content-length"] == str(MIB)
        assert response.body == b""


def test_a_missing_file_is_a_500_and_a_clear_log_line(server: ServerProcess,
                                                      files: dict[str, Path]) -> None:
    response = get(server, file_target("/path-no-length", files["missing"]))
    assert response.status == 500
    server.wait_for_log("pathsend of a file that cannot be opened")
    assert get(server, file_target("/path", files["one"])).status == 200  # still serving


def test_zerocopysend_with_offset_and_count(server: ServerProcess,
                                            files: dict[str, Path]) -> None:
    data = files["one"].read_bytes()
    response = get(server, file_target("/zerocopy", files["one"], offset=1000, count=300_000))
    assert response.status == 200
    assert response.body == data[1000:301_000]


def test_zerocopysend_in_parts_from_the_files_position(server: ServerProcess,
                                                       files: dict[str, Path]) -> None:
    response = get(server, file_target("/zerocopy-parts", files["one"]))
    assert response.status == 200
    assert response.body == files["one"].read_bytes()


def test_a_client_that_disconnects_mid_file(server: ServerProcess,
                                            files: dict[str, Path]) -> None:
    logged_before = len(server.output)
    with server.connect(timeout=10) as sock:
        sock.sendall(f"GET {file_target('/path', files['large'])} HTTP/1.1\r\n"
                     "Host: t\r\n\r\n".encode())
        received = 0
        while received < MIB:  # the body is flowing
            received += len(sock.recv(65536))
        # Closed with unread data and SO_LINGER 0: a reset, as a client gone mid-download.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The app is told (ClientDisconnected, an OSError) and the server serves on.
    wait_until(lambda: httpx.get(server.url + "/last").json()["outcome"]
               == "ClientDisconnected", what="the app was told the client went")
    assert get(server, file_target("/path", files["one"])).status == 200
    assert "Traceback" not in server.output[logged_before:]  # a client's doing: no traceback


def test_over_tls_the_file_is_copied_intact(tmp_path: Path, files: dict[str, Path]) -> None:
    tls = write_tls_files(tmp_path)
    process = ServerProcess(["apps.file_app:app", "--host", "127.0.0.1", "--port", "0",
                             "--ssl-cert-path", str(tls["cert"]),
                             "--ssl-key-path", str(tls["key"])])
    try:
        context = ssl.create_default_context(cafile=str(tls["ca"]))
        with httpx.Client(verify=context, timeout=10) as client:
            response = client.get(process.url + file_target("/path", files["one"]))
            assert response.status_code == 200
            assert response.content == files["one"].read_bytes()
            part = client.get(process.url + file_target("/zerocopy", files["one"],
                                                        offset=5, count=70_000))
            assert part.content == files["one"].read_bytes()[5:70_005]
    finally:
        process.stop()



def test_the_docs_pathsend_example_serves_its_own_file(tmp_path: Path) -> None:
    """docs/frameworks.md's pathsend example, served as written."""
    example = tmp_path / "download.py"
    example.write_text(code_blocks("frameworks.md", "python")[2])
    process = ServerProcess(["download:app", "--app-dir", str(tmp_path), "--host",
                             "127.0.0.1", "--port", "0"])
    try:
        response = httpx.get(process.url + "/", timeout=10)
        assert response.status_code == 200
        assert response.content == example.read_bytes()
        assert "http.response.pathsend" in response.text  # it is the example itself
    finally:
        assert process.stop() == 0

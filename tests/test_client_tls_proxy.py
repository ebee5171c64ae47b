"""TLS (verification, a custom CA, client certificates, ALPN h2) against Qactuar over HTTPS,
and proxies: an HTTP proxy (absolute form for http, CONNECT for https) and a SOCKS5 proxy,
both small asyncio servers in the test that record what they were asked, and the real
proxy daemons a user would run (tinyproxy, microsocks), each a process started by the test."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from client_helpers import run
from conftest import ServerProcess
from qactuar.client import Client, ProxyError, TLSError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("pki")
    paths = {name: folder / f"{name}.pem" for name in
             ("ca", "cert", "key", "client", "other_ca")}
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server_cert.private_key_pem.write_to_path(str(paths["key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    ca.issue_cert("client@tests").private_key_and_cert_chain_pem.write_to_path(
        str(paths["client"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other_ca"]))
    return paths


@pytest.fixture(scope="module")
def https_server(pki: dict[str, Path]) -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.client_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--ssl-cert-path", str(pki["cert"]),
                            "--ssl-key-path", str(pki["key"])])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http_server() -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.client_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield server
    server.stop()


def get(url: str, **options) -> object:
    async def main():
        async with Client(**options) as client:
            try:
                return await client.get(url)
            except Exception as error:  # returned, so the test can look at it
                return error

    return run(main())


def test_verification_is_on_by_default(https_server: ServerProcess) -> None:
    error = get(f"{https_server.url}/method")
    assert isinstance(error, TLSError) and error.code == 713
    assert "certificate" in str(error)


def test_custom_ca_and_alpn(https_server: ServerProcess, pki: dict[str, Path]) -> None:
    over_h2 = get(f"{https_server.url}/method", verify=str(pki["ca"]))
    over_h1 = get(f"{https_server.url}/method", verify=str(pki["ca"]), http2=False)
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with_context = get(f"{https_server.url}/method", verify=context)
    unverified = get(f"{https_server.url}/method", verify=False)
    wrong_ca = get(f"{https_server.url}/method", verify=str(pki["other_ca"]))
    assert over_h2.http_version == "HTTP/2" and over_h2.json()["method"] == "GET"
    assert over_h1.http_version == "HTTP/1.1" and over_h1.status_code == 200
    assert with_context.status_code == 200 and unverified.status_code == 200
    assert isinstance(wrong_ca, TLSError)


def test_wrong_host_name_is_713(tmp_path: Path) -> None:
    ca = trustme.CA()
    elsewhere = ca.issue_cert("other.test")  # a valid certificate, for another name
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    elsewhere.cert_chain_pems[0].write_to_path(str(cert))
    elsewhere.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    server = ServerProcess(["apps.client_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--ssl-cert-path", str(cert), "--ssl-key-path", str(key)])
    try:
        error = get(f"{server.url}/method", verify=str(ca_file))
    finally:
        server.stop()
    assert isinstance(error, TLSError) and error.code == 713
    assert "127.0.0.1" in str(error)


def test_tls_to_a_plain_http_port_is_713(http_server: ServerProcess) -> None:
    error = get(f"https://127.0.0.1:{http_server.port}/", verify=False)
    assert isinstance(error, TLSError) and error.code == 713


def test_client_certificate(pki: dict[str, Path]) -> None:
    server = ServerProcess(["apps.client_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--ssl-cert-path", str(pki["cert"]), "--ssl-key-path",
                            str(pki["key"]), "--ssl-cert-reqs", "required",
                            "--ssl-ca-path", str(pki["ca"])])
    try:
        with_cert = get(f"{server.url}/method", verify=str(pki["ca"]),
                        cert=str(pki["client"]))
        without = get(f"{server.url}/method", verify=str(pki["ca"]), http2=False)
    finally:
        server.stop()
    assert with_cert.status_code == 200
    assert isinstance(without, Exception) and getattr(without, "code", None) in (700, 708, 713)


# -- proxies -------------------------------------------------------------------------------
async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class ProxyServer:
    """An HTTP proxy (absolute-form forwarding and CONNECT) or a SOCKS5 proxy."""

    def __init__(self, kind: str, credentials: tuple[str, str] | None = None) -> None:
        self.kind = kind
        self.credentials = credentials
        self.seen: list[str] = []

    async def __aenter__(self) -> ProxyServer:
        handler = self._socks5 if self.kind == "socks5" else self._http
        self.server = await asyncio.start_server(handler, "127.0.0.1", 0)
        self.url = f"{self.kind}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.server.close()

    async def _http(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        self.seen.append(request_line)
        method, target, _ = request_line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            rest = target.split("://", 1)[1]
            authority, _, path = rest.partition("/")
            host, port = authority.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            up_writer.write(head.replace(target.encode(), b"/" + path.encode(), 1))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _socks5(self, reader, writer) -> None:
        _, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if self.credentials:
            assert 2 in methods
            writer.write(b"\x05\x02")
            _, size = await reader.readexactly(2)
            user = (await reader.readexactly(size)).decode()
            size = (await reader.readexactly(1))[0]
            password = (await reader.readexactly(size)).decode()
            ok = (user, password) == self.credentials
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                writer.close()
                return
        else:
            writer.write(b"\x05\x00")
        _, command, _, kind = await reader.readexactly(4)
        if kind == 3:
            size = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(size)).decode()
        else:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        port = struct.unpack(">H", await reader.readexactly(2))[0]
        self.seen.append(f"{command} {host}:{port}")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            writer.close()
            return
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def through(proxy_kind: str, url: str, credentials=None, proxy_user: str = "",
            **options) -> tuple[object, list[str]]:
    async def main():
        async with ProxyServer(proxy_kind, credentials) as proxy:
            proxy_url = proxy.url
            if proxy_user:
                proxy_url = proxy_url.replace("://", f"://{proxy_user}@")
            async with Client(proxy=proxy_url, **options) as client:
                try:
                    result = await client.get(url)
                except Exception as error:
                    result = error
            return result, proxy.seen

    return run(main())


def test_http_proxy_absolute_form_for_http(http_server: ServerProcess) -> None:
    response, seen = through("http", f"{http_server.url}/method?via=proxy")
    assert response.json()["query"] == "via=proxy"
    assert seen == [f"GET {http_server.url}/method?via=proxy HTTP/1.1"]


def test_http_proxy_connect_for_https(https_server: ServerProcess, pki) -> None:
    response, seen = through("http", f"{https_server.url}/method", verify=str(pki["ca"]))
    assert response.status_code == 200 and response.http_version == "HTTP/2"
    assert seen == [f"CONNECT 127.0.0.1:{https_server.port} HTTP/1.1"]


def test_socks5_proxy_for_http_and_https(http_server, https_server, pki) -> None:
    plain, seen_plain = through("socks5", f"{http_server.url}/method")
    secure, seen_secure = through("socks5", f"{https_server.url}/method",
                                  verify=str(pki["ca"]))
    named, seen_named = through("socks5", f"http://localhost:{http_server.port}/method",
                                credentials=("alice", "pw"), proxy_user="alice:pw")
    assert plain.status_code == 200 and secure.status_code == 200 and named.status_code == 200
    assert seen_plain == [f"1 127.0.0.1:{http_server.port}"]
    assert seen_secure == [f"1 127.0.0.1:{https_server.port}"]
    assert seen_named == [f"1 localhost:{http_server.port}"]  # the proxy resolves the name


def test_proxy_failures_are_714(http_server: ServerProcess) -> None:
    refused, _ = through("socks5", "http://127.0.0.1:1/")
    bad_password, _ = through("socks5", f"{http_server.url}/", credentials=("alice", "pw"),
                              proxy_user="alice:wrong")
    assert isinstance(refused, ProxyError) and refused.code == 714
    assert "connection refused" in str(refused)
    assert isinstance(bad_password, ProxyError) and "password" in str(bad_password)


# -- real proxy daemons (processes started by the test) -----------------------------------
def free_port() -> int:
    # (The daemons take a port number, not 0: one the system just handed out.)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daemon(command: list[str], port: int, output: Path) -> subprocess.Popen[bytes]:
    """Start a proxy daemon and wait (with a deadline) until it accepts connections."""
    with output.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{command[0]} exited: {output.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise AssertionError(f"{command[0]} did not listen within 10 s")


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def fetch_both(proxy_url: str, http_url: str, https_url: str, ca: Path) -> list[object]:
    async def main() -> list[object]:
        async with Client(proxy=proxy_url, verify=str(ca)) as client:
            return [await client.get(http_url), await client.get(https_url)]

    return run(main())


@pytest.mark.skipif(shutil.which("tinyproxy") is None,
                    reason="Debian's tinyproxy is not installed")
def test_tinyproxy_forwards_http_and_tunnels_https(http_server, https_server, pki,
                                                   tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "tinyproxy.conf"
    # No ConnectPort line: CONNECT to any port (the test server's is not 443).
    config.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\n"
                      "Allow 127.0.0.1\nLogLevel Connect\n")
    log = tmp_path / "tinyproxy.log"
    proxy = start_daemon(["tinyproxy", "-d", "-c", str(config)], port, log)
    try:
        plain, secure = fetch_both(f"http://127.0.0.1:{port}",
                                   f"{http_server.url}/method?via=tinyproxy",
                                   f"{https_server.url}/method", pki["ca"])
    finally:
        stop_daemon(proxy)
    assert plain.json()["query"] == "via=tinyproxy"
    assert secure.status_code == 200 and secure.http_version == "HTTP/2"  # ALPN in the tunnel
    seen = log.read_text()
    assert f"GET {http_server.url}/method?via=tinyproxy HTTP/1.1" in seen  # absolute form
    assert f"CONNECT 127.0.0.1:{https_server.port} HTTP/1.1" in seen


@pytest.mark.skipif(shutil.which("microsocks") is None,
                    reason="Debian's microsocks is not installed")
def test_microsocks_with_a_password(http_server, https_server, pki, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "microsocks.log"
    proxy = start_daemon(["microsocks", "-i", "127.0.0.1", "-p", str(port),
                          "-u", "alice", "-P", "pw"], port, log)
    try:
        plain, secure = fetch_both(f"socks5://alice:pw@127.0.0.1:{port}",
                                   f"{http_server.url}/method?via=socks",
                                   f"{https_server.url}/method", pki["ca"])
        refused = get(f"{http_server.url}/method", proxy=f"socks5://alice:wrong@127.0.0.1:{port}")
    finally:
        stop_daemon(proxy)
    assert plain.json()["query"] == "via=socks"
    assert secure.status_code == 200 and secure.http_version == "HTTP/2"
    assert isinstance(refused, ProxyError) and refused.code == 714
    seen = log.read_text()
    assert f"connected to 127.0.0.1:{http_server.port}" in seen
    assert f"connected to 127.0.0.1:{https_server.port}" in seen

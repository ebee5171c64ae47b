"""docs/http3-udp.md's examples, run as a user would: the HTTP/3 command line, the config
file, the UDP echo app and its command line."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import tomllib
from pathlib import Path

import httpx
import pytest

from conftest import TESTS_DIR, write_tls_files
from docs_commands import app_module, lines_of, serve_line
from docs_examples import code_blocks
from qactuar.config import Config

pytest.importorskip("aioquic")
from h3_client import h3_connect

PAGE = "http3-udp.md"


def test_the_page_has_its_examples() -> None:
    assert len(code_blocks(PAGE, "bash")) == 3
    assert len(code_blocks(PAGE, "python")) == 1
    assert len(code_blocks(PAGE, "toml")) == 1
    assert "qactuar[h3]" in code_blocks(PAGE, "bash")[0]
    pyproject = tomllib.loads((TESTS_DIR.parent / "pyproject.toml").read_text())
    assert any(dep.startswith("aioquic") for dep in
               pyproject["project"]["optional-dependencies"]["h3"])


def test_the_config_file_example_is_valid() -> None:
    settings = tomllib.loads(code_blocks(PAGE, "toml")[0])
    config = Config(**settings)
    assert config.QUIC_BIND == "0.0.0.0:443"


def test_the_http3_command_line_serves_http3_with_alt_svc(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path)
    app_module(tmp_path / "app.py", "hello over three")
    (line,) = lines_of(code_blocks(PAGE, "bash")[1])
    server = serve_line(line.replace(":8443", ":0"), tmp_path)
    try:
        port = int(server.wait_for_log(r"HTTP/3 \(QUIC\) on udp://[\d.]+:(\d+)").group(1))

        async def go() -> None:
            async with h3_connect("127.0.0.1", port, ca=str(tls["ca"])) as client:
                answer = await client.request("GET", "/")
                assert answer.body == b"hello over three"
        asyncio.run(go())
        context = ssl.create_default_context(cafile=str(tls["ca"]))
        answer = httpx.get(f"{server.url}/", verify=context, timeout=5)
        assert answer.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
    finally:
        assert server.stop() == 0


def test_the_udp_echo_example(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(code_blocks(PAGE, "python")[0])
    (line,) = lines_of(code_blocks(PAGE, "bash")[2])
    server = serve_line(line.replace(":9999", ":0"), tmp_path)
    try:
        port = int(server.wait_for_log(r"UDP app on udp://[\d.]+:(\d+)").group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(b"ping", ("127.0.0.1", port))
            assert sock.recv(100) == b"echo: ping"
        assert re.search(r"UDP echo", httpx.get(f"{server.url}/", timeout=5).text)
    finally:
        assert server.stop() == 0

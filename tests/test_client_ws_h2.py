"""The WebSocket client over HTTP/2 (RFC 8441, qactuar/client/websocket_h2.py) against
Qactuar's WebSocket-over-HTTP/2 server (qactuar/protocols/h2_websocket.py): h2c prior
knowledge for ws://, ALPN for wss:// (and the fall back to HTTP/1.1 without it)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess, file_lines, wait_until, write_tls_files
from qactuar.client import errors
from qactuar.client.websocket import (
    CLOSE,
    Message,
    WebSocketClosed,
    WebSocketRefused,
    connect,
)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws-h2-events") / "events.txt"


@pytest.fixture(scope="module")
def server(events_file: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.ws_app:app", "--host", "127.0.0.1", "--port", "0"],
                            env={"TEST_EVENTS_FILE": str(events_file)})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tls_files(tmp_path_factory.mktemp("ws-h2-tls"))


def url(server: ServerProcess, path: str, scheme: str = "ws") -> str:
    return f"{scheme}://{server.host}:{server.port}{path}"


def test_messages_over_an_h2_stream(server: ServerProcess) -> None:
    big = "h2 " * 100_000  # many DATA frames, past the initial flow-control window

    async def main() -> list[Any]:
        async with connect(url(server, "/echo"), http2=True) as ws:
            await ws.send("hello over h2")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            binary = await ws.recv()
            await ws.send(["frag", "men", "ted"])
            fragmented = await ws.recv()
            await ws.send(big)
            echoed_big = await ws.recv() == big
            pong = await ws.ping()
            return [ws.http_version, ws.extensions, text, binary, fragmented, echoed_big,
                    pong >= 0]

    assert run(main()) == ["HTTP/2", ["permessage-deflate"], "hello over h2", b"\x00\x01",
                           "fragmented", True, True]


def test_close_codes_both_ways(server: ServerProcess, events_file: Path) -> None:
    async def main() -> list[Any]:
        async with connect(url(server, "/close?code=4001&reason=bye"), http2=True) as ws:
            closing = await ws.recv_message(control=True)
            with pytest.raises(WebSocketClosed) as closed:
                await ws.recv()
        ws = await connect(url(server, "/echo?h2"), http2=True)
        await ws.close(4002, "client done")
        return [closing, closed.value.close_code, ws.close_code, ws.close_reason]

    assert run(main()) == [Message(CLOSE, "bye"), 4001, 4002, "client done"]
    wait_until(lambda: "/echo disconnect 4002 client done" in file_lines(events_file),
               what="the app's disconnect over HTTP/2")


def test_subprotocol_headers_and_refusal(server: ServerProcess) -> None:
    async def main() -> list[Any]:
        async with connect(url(server, "/subprotocol"), http2=True,
                           subprotocols=["chat", "json"]) as ws:
            offered = await ws.recv()
            chosen = ws.subprotocol
        async with connect(url(server, "/scope"), http2=True,
                           headers={"X-Token": "abc", "Keep-Alive": "timeout=5"}) as ws:
            scope = json.loads(await ws.recv())
        with pytest.raises(WebSocketRefused) as refused:
            await connect(url(server, "/deny"), http2=True)
        return [offered, chosen, scope["http_version"], scope["headers"], refused.value]

    offered, chosen, version, headers, refused = run(main())
    assert (offered, chosen, version) == ('["chat", "json"]', "json", "2")
    assert ["x-token", "abc"] in headers
    assert not any(name == "keep-alive" for name, _ in headers)  # forbidden in HTTP/2
    assert (refused.code, refused.status, refused.reason, refused.body) == (
        716, 401, "Unauthorized", b"no entry")


def test_h2c_to_a_server_without_http2_is_716(start_server,
                                              caplog: pytest.LogCaptureFixture) -> None:
    http1_only = start_server("apps.ws_app:app", "--http2", "off")

    async def main() -> errors.ClientError:
        with pytest.raises(errors.ClientError) as failed:
            await connect(url(http1_only, "/echo"), http2=True)
        return failed.value

    assert run(main()).code == 716
    gc.collect()  # a failed future nobody awaited would be reported now
    assert not [record for record in caplog.records
                if "never retrieved" in record.getMessage()]


def test_wss_uses_h2_by_alpn_and_falls_back_to_http1(start_server,
                                                     tls: dict[str, Path]) -> None:
    tls_args = ("--ssl-cert-path", str(tls["cert"]), "--ssl-key-path", str(tls["key"]))
    with_h2 = start_server("apps.ws_app:app", *tls_args)
    without_h2 = start_server("apps.ws_app:app", *tls_args, "--http2", "off")

    async def main() -> list[Any]:
        versions = []
        for server in (with_h2, without_h2):
            async with connect(url(server, "/echo", "wss"), http2=True,
                               verify=str(tls["ca"])) as ws:
                await ws.send("secure")
                versions.append((ws.http_version, await ws.recv()))
        with pytest.raises(errors.ClientError) as untrusted:
            await connect(url(with_h2, "/echo", "wss"), http2=True)
        return [*versions, untrusted.value.code]

    assert run(main()) == [("HTTP/2", "secure"), ("HTTP/1.1", "secure"), 713]

"""Quart (Flask's API on ASGI) through the real server, in every process model:
HTTP with httpx, its WebSocket route with the `websockets` client.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from conftest import TESTS_DIR, ServerProcess
from matrix import MODELS, app_fixtures, covers, start_app

FRAMEWORKS = ["quart"]
APP = "apps.quart_app:app"

server, client = app_fixtures(APP)


@covers("routing", "json", "lifespan")
def test_routes_and_the_before_serving_hook(client: httpx.Client) -> None:
    assert client.get("/").text == "Hello from Quart"
    response = client.get("/json", params={"q": "x y"})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"framework": "quart", "query": {"q": "x y"}, "root_path": "",
                               "url_for": "/json", "greeting": "hello from quart lifespan"}


@covers("json")
def test_json_request_body(client: httpx.Client) -> None:
    payload = {"text": "naïve ✓", "numbers": list(range(500))}
    assert client.post("/echo-json", json=payload).json() == {"received": payload}


@covers("form")
def test_urlencoded_form(client: httpx.Client) -> None:
    response = client.post("/form", data={"a": ["1", "2"], "b": "x"})
    assert response.json() == {"fields": {"a": ["1", "2"], "b": ["x"]}}


@covers("upload")
@pytest.mark.parametrize("size", [0, 300 * 1024])
def test_multipart_upload(client: httpx.Client, size: int) -> None:
    content = os.urandom(size)
    response = client.post("/upload", data={"note": "n ✓"},
                           files={"file": ("data.bin", content, "application/x-test")})
    assert response.status_code == 200, response.text
    assert response.json() == {"filename": "data.bin", "content_type": "application/x-test",
                               "size": size, "sha256": hashlib.sha256(content).hexdigest(),
                               "note": "n ✓"}


@covers("streaming")
def test_streamed_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": "100"}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(100))


@covers("file")
def test_send_file(client: httpx.Client) -> None:
    response = client.get("/file")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-python")
    assert response.content == (TESTS_DIR / "apps" / "quart_app.py").read_bytes()


@covers("errors")
def test_quarts_error_answers(server: ServerProcess, client: httpx.Client) -> None:
    start = len(server.lines)
    assert client.get("/crash").status_code == 500
    server.wait_for_log("the Quart view crashed on purpose", start=start)
    assert client.get("/missing").status_code == 404
    assert client.delete("/").status_code == 405


async def _websocket_talk(server: ServerProcess, path: str) -> tuple[Any, list[str | bytes]]:
    """The /ws greeting, then the echoes of a text and a binary message."""
    async with websockets.connect(f"ws://{server.host}:{server.port}{path}") as ws:
        hello = json.loads(await ws.recv())
        echoes = []
        for message in ["hi ✓", b"\x00\xff" * 1000]:
            await ws.send(message)
            echoes.append(await ws.recv())
        return hello, echoes


def _talk(server: ServerProcess, path: str) -> tuple[Any, list[str | bytes]]:
    return asyncio.run(asyncio.wait_for(_websocket_talk(server, path), 20))


@covers("websocket", "lifespan")
def test_a_websocket_route(server: ServerProcess) -> None:
    hello, echoes = _talk(server, "/ws")
    # In a WebSocket context Quart's url_for is external: scheme and host from the scope.
    assert hello == {"framework": "quart", "root_path": "",
                     "url_for": f"ws://{server.host}:{server.port}/ws",
                     "greeting": "hello from quart lifespan"}
    assert echoes == ["quart: hi ✓", b"\x00\xff" * 1000]


@covers("root_path")
@pytest.mark.parametrize("model", MODELS)
def test_mounted_under_an_apps_prefix(tmp_path: Path, model: str) -> None:
    config = tmp_path / "apps.json"
    config.write_text(json.dumps({"APPS": {"/q": APP}}))
    server = start_app("", model, env={"QACTUAR_CONFIG": str(config)})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            seen = http.get("/q/json").json()
            assert (seen["root_path"], seen["url_for"]) == ("/q", "/q/json")
            assert http.get("/q/").text == "Hello from Quart"
        hello, echoes = _talk(server, "/q/ws")
        assert (hello["root_path"], hello["url_for"]) == (
            "/q", f"ws://{server.host}:{server.port}/q/ws")
        assert echoes[0] == "quart: hi ✓"
    finally:
        assert server.stop() == 0, server.output

"""Starlette and FastAPI end to end through the real server, with httpx, curl and websockets.

Both apps (apps/starlette_app.py, apps/fastapi_app.py) have the same routes,
HTTP and WebSocket (apps/ws_frameworks.py), so every test runs against both,
in every process model of the matrix (`matrix.MODELS`).  `@covers` marks feed
the "works with" table of docs/frameworks.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.lifespan_apps import EVENTS_VAR
from conftest import TESTS_DIR, ServerProcess, file_lines, wait_until
from matrix import MODELS, covers, start_app

FRAMEWORKS = ["starlette", "fastapi"]
CASES = [(name, model) for model in MODELS for name in FRAMEWORKS]


def _case_id(case: tuple[str, str]) -> str:
    return "-".join(case)


class Served(NamedTuple):
    name: str  # "starlette" or "fastapi"
    server: ServerProcess
    events: Path  # the app's events file: background tokens, WebSocket disconnects


@pytest.fixture(scope="module", params=CASES, ids=_case_id)
def framework(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name, model = request.param
    events = tmp_path_factory.mktemp(f"{name}-{model}") / "events.txt"
    server = start_app(f"apps.{name}_app:app", model, env={EVENTS_VAR: str(events)})
    yield Served(name, server, events)
    assert server.stop() == 0, server.output


@pytest.fixture
def client(framework: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=framework.server.url, timeout=10) as http:
        yield http


@covers("routing", "json", "lifespan")
def test_json_endpoint_sees_the_lifespan_state(framework: Served,
                                               client: httpx.Client) -> None:
    name = framework.name
    response = client.get("/json", params={"x": "1", "y": "two words"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"framework": name, "greeting": f"hello from {name} lifespan",
                               "root_path": "", "query": {"x": "1", "y": "two words"}}


@covers("json")
def test_json_request_body(client: httpx.Client) -> None:
    payload = {"text": "naïve café ✓", "numbers": list(range(2000)), "nested": {"a": [None]}}
    response = client.post("/echo-json", json=payload)
    assert response.status_code == 200
    assert response.json() == {"received": payload}


@covers("form", "upload")
@pytest.mark.parametrize("size", [0, 11, 300 * 1024])
def test_multipart_upload(client: httpx.Client, size: int) -> None:
    content = os.urandom(size)
    response = client.post("/upload", data={"note": "a note ✓"},
                           files={"file": ("report.bin", content, "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert response.json() == {"filename": "report.bin",
                               "content_type": "application/octet-stream",
                               "size": size, "sha256": hashlib.sha256(content).hexdigest(),
                               "note": "a note ✓"}


@covers("streaming")
def test_streaming_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": "200"}) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(200))


@covers("background")
def test_background_task_runs_after_the_response(client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    # The task waits for /release, so the answer can only come before it runs.
    response = client.post(f"/background/{token}")
    assert response.status_code == 200
    assert response.json() == {"scheduled": token}
    assert client.get(f"/background/{token}").json() == {"token": token, "done": False}
    assert client.post(f"/release/{token}").status_code == 200
    wait_until(lambda: client.get(f"/background/{token}").json()["done"],
               what="the background task to finish")


def test_background_task_on_a_separate_connection(framework: Served) -> None:
    """The scheduling connection stays open and idle while its task runs."""
    url = framework.server.url
    token = uuid.uuid4().hex
    with httpx.Client(base_url=url, timeout=10) as first, \
            httpx.Client(base_url=url, timeout=10) as second:
        assert first.post(f"/background/{token}").status_code == 200
        assert second.post(f"/release/{token}").status_code == 200
        wait_until(lambda: second.get(f"/background/{token}").json()["done"],
                   what="the background task to finish")
        # The first connection is still usable for another request.
        assert first.get("/json").status_code == 200


@pytest.mark.parametrize("framework", [("fastapi", model) for model in MODELS],
                         indirect=True, ids=_case_id)
def test_fastapi_validation(client: httpx.Client) -> None:
    ok = client.post("/items", json={"name": "lamp", "price": 10, "tags": ["home"]})
    assert ok.status_code == 200
    assert ok.json() == {"name": "lamp", "price": 10.0, "tags": ["home"], "with_tax": 12.0}
    bad = client.post("/items", json={"name": "lamp", "price": "free"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "price"]


def test_curl_as_a_client(framework: Served, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is not installed"
    name, server = framework.name, framework.server
    upload = tmp_path / "hello.txt"
    upload.write_bytes(b"hello from curl\n" * 1000)
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--fail", "--max-time", "20",
         "-F", f"file=@{upload};type=text/plain", "-F", "note=sent by curl",
         f"{server.url}/upload",
         "--next", "--silent", "--show-error", "--fail", "--max-time", "20",
         f"{server.url}/json"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    uploaded, end = decoder.raw_decode(result.stdout)
    info = json.loads(result.stdout[end:])
    assert uploaded == {"filename": "hello.txt", "content_type": "text/plain",
                        "size": upload.stat().st_size,
                        "sha256": hashlib.sha256(upload.read_bytes()).hexdigest(),
                        "note": "sent by curl"}
    assert info["greeting"] == f"hello from {name} lifespan"


@covers("file")
def test_file_response(client: httpx.Client, framework: Served) -> None:
    source = (TESTS_DIR / "apps" / f"{framework.name}_app.py").read_bytes()
    response = client.get("/file")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-python")
    assert response.content == source
    partial = client.get("/file", headers={"Range": "bytes=10-29"})
    assert partial.status_code == 206
    assert partial.content == source[10:30]


@covers("errors")
def test_the_frameworks_own_error_answers(client: httpx.Client) -> None:
    missing = client.get("/no/such/route")
    assert missing.status_code == 404
    assert "Not Found" in missing.text
    assert client.delete("/json").status_code == 405


# -- WebSocket endpoints (apps/ws_frameworks.py), with the `websockets` client -------


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


@covers("websocket")
def test_websocket_echo_text_and_bytes_and_the_disconnect_code(framework: Served) -> None:
    name, server, events = framework

    async def talk() -> list[Any]:
        answers = []
        async with websockets.connect(ws_url(server, "/ws/echo")) as ws:
            for message in ["hello", "ünïcode ✓", b"\x00\x01\xff", "x" * 200_000]:
                await ws.send(message)
                answers.append(await ws.recv())
            await ws.close(code=4100, reason="client done")
        return answers

    assert run(talk()) == ["hello", "ünïcode ✓", b"\x00\x01\xff", "x" * 200_000]
    wait_until(lambda: f"{name} disconnect 4100" in file_lines(events),
               what="WebSocketDisconnect with the client's code")


@covers("websocket", "lifespan")
def test_websocket_json_messages_see_the_lifespan_state(framework: Served) -> None:
    async def talk() -> list[Any]:
        async with websockets.connect(ws_url(framework.server, "/ws/json")) as ws:
            replies = []
            for payload in [{"a": 1}, [1, 2, 3], "text"]:
                await ws.send(json.dumps(payload))
                replies.append(json.loads(await ws.recv()))
            return replies

    greeting = f"hello from {framework.name} lifespan"
    assert run(talk()) == [{"got": payload, "greeting": greeting}
                           for payload in [{"a": 1}, [1, 2, 3], "text"]]


async def _first_message_and_close(url: str, subprotocols: list[str] | None = None,
                                   ) -> tuple[str | None, Any, Any]:
    """Connect, read one JSON message, then the server's close frame."""
    async with websockets.connect(url, subprotocols=subprotocols) as ws:
        data = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
        return ws.subprotocol, data, caught.value.rcvd


@covers("websocket", "routing")
def test_websocket_path_parameters_query_and_subprotocol(framework: Served) -> None:
    subprotocol, data, close = run(_first_message_and_close(
        ws_url(framework.server, "/ws/items/42?q=find%20me"), ["graphql-ws", "other"]))
    assert subprotocol == "graphql-ws"
    assert data == {"id": 42, "q": "find me", "root_path": ""}
    assert close is not None and close.code == 1000


@covers("websocket")
def test_websocket_server_side_close_code_and_reason(framework: Served) -> None:
    async def talk() -> Any:
        async with websockets.connect(ws_url(framework.server, "/ws/close")) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            return caught.value.rcvd

    close = run(talk())
    assert (close.code, close.reason) == (4002, f"bye from {framework.name}")


@covers("websocket")
def test_websocket_denial_response(framework: Served) -> None:
    with pytest.raises(InvalidStatus) as caught:
        run(websockets.connect(ws_url(framework.server, "/ws/deny")))
    response = caught.value.response
    assert response.status_code == 401
    assert bytes(response.body) == f"nope {framework.name}".encode()


def test_unknown_websocket_route_is_refused(framework: Served) -> None:
    with pytest.raises(InvalidStatus) as caught:
        run(websockets.connect(ws_url(framework.server, "/ws/nowhere")))
    assert caught.value.response.status_code in (403, 404)


def test_many_concurrent_websocket_connections(framework: Served) -> None:
    async def one(index: int) -> list[str]:
        async with websockets.connect(ws_url(framework.server, "/ws/echo")) as ws:
            replies = []
            for turn in range(5):
                await ws.send(f"{index}-{turn}")
                replies.append(await ws.recv())
            return replies

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(one(index) for index in range(50)))

    assert run(many()) == [[f"{index}-{turn}" for turn in range(5)] for index in range(50)]


# -- mounted under APPS prefixes: root_path ------------------------------------------


@pytest.fixture(scope="module", params=MODELS)
def framework_mounts(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("fw") / "apps.json"
    config.write_text(json.dumps({"APPS": {"/api": "apps.starlette_app:app",
                                           "/fast": "apps.fastapi_app:app"}}))
    server = start_app("", request.param, env={"QACTUAR_CONFIG": str(config)})
    yield server
    assert server.stop() == 0, server.output


@covers("root_path", frameworks=["starlette"])
def test_starlette_routes_under_a_prefix(framework_mounts: ServerProcess) -> None:
    url = framework_mounts.url
    with httpx.Client(base_url=url, timeout=5) as client:
        items = client.get("/api/items")
        assert items.status_code == 200
        assert items.json() == {"items": ["apple", "pear", "plum"],
                                "first_url": f"{url}/api/items/1"}
        item = client.get("/api/items/3")
        assert item.json() == {"id": 3, "name": "plum", "url": f"{url}/api/items/3"}
        info = client.get("/api/json")
        assert info.json()["root_path"] == "/api"
        assert info.json()["greeting"] == "hello from starlette lifespan"
        # Starlette's own 404 for its unknown route; the server's for the bare route.
        assert client.get("/api/unknown").status_code == 404
        assert client.get("/items").status_code == 404
    _, data, _ = run(_first_message_and_close(ws_url(framework_mounts, "/api/ws/items/7")))
    assert data == {"id": 7, "q": None, "root_path": "/api"}


@covers("root_path", frameworks=["fastapi"])
def test_fastapi_under_a_prefix(framework_mounts: ServerProcess) -> None:
    with httpx.Client(base_url=framework_mounts.url, timeout=5) as client:
        info = client.get("/fast/json")
        assert info.status_code == 200
        assert info.json()["greeting"] == "hello from fastapi lifespan"
        assert info.json()["root_path"] == "/fast"
        assert client.get("/fast/openapi.json").json()["info"]["title"] == "FastAPI"
        docs = client.get("/fast/docs")
        assert docs.status_code == 200
        assert "/fast/openapi.json" in docs.text
    _, data, _ = run(_first_message_and_close(ws_url(framework_mounts, "/fast/ws/items/8?q=x")))
    assert data == {"id": 8, "q": "x", "root_path": "/fast"}

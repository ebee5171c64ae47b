"""Starlette and FastAPI WebSocket endpoints through the real server, with the `websockets` client.

Both apps (apps/ws_frameworks.py) have the same routes, so every test runs
against both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.lifespan_apps import EVENTS_VAR
from conftest import ServerProcess, file_lines, wait_until

FRAMEWORKS = ["starlette", "fastapi"]


@pytest.fixture(scope="module", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ServerProcess,
                                                                          Path]]:
    name = request.param
    events = tmp_path_factory.mktemp(name) / "events.txt"
    server = ServerProcess([f"apps.ws_frameworks:{name}_app", "--host", "127.0.0.1",
                            "--port", "0", "--shutdown-timeout", "5"],
                           env={EVENTS_VAR: str(events)})
    yield name, server, events
    assert server.stop() == 0, server.output


def url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_echo_text_and_bytes_and_the_disconnect_code(
        framework: tuple[str, ServerProcess, Path]) -> None:
    name, server, events = framework

    async def talk() -> list[Any]:
        answers = []
        async with websockets.connect(url(server, "/ws/echo")) as ws:
            for message in ["hello", "ünïcode ✓", b"\x00\x01\xff", "x" * 200_000]:
                await ws.send(message)
                answers.append(await ws.recv())
            await ws.close(code=4100, reason="client done")
        return answers

    assert run(talk()) == ["hello", "ünïcode ✓", b"\x00\x01\xff", "x" * 200_000]
    wait_until(lambda: f"{name} disconnect 4100" in file_lines(events),
               what="WebSocketDisconnect with the client's code")


def test_json_messages_see_the_lifespan_state(
        framework: tuple[str, ServerProcess, Path]) -> None:
    name, server, _ = framework

    async def talk() -> list[Any]:
        async with websockets.connect(url(server, "/ws/json")) as ws:
            replies = []
            for payload in [{"a": 1}, [1, 2, 3], "text"]:
                await ws.send(json.dumps(payload))
                replies.append(json.loads(await ws.recv()))
            return replies

    assert run(talk()) == [{"got": payload, "greeting": f"hello from {name}"}
                           for payload in [{"a": 1}, [1, 2, 3], "text"]]


def test_path_parameters_query_and_subprotocol(
        framework: tuple[str, ServerProcess, Path]) -> None:
    _, server, _ = framework

    async def talk() -> tuple[str | None, Any, Any]:
        async with websockets.connect(url(server, "/ws/items/42?q=find%20me"),
                                      subprotocols=["graphql-ws", "other"]) as ws:
            data = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            return ws.subprotocol, data, caught.value.rcvd

    subprotocol, data, close = run(talk())
    assert subprotocol == "graphql-ws"
    assert data == {"id": 42, "q": "find me", "root_path": ""}
    assert close is not None and close.code == 1000


def test_server_side_close_code_and_reason(framework: tuple[str, ServerProcess, Path]) -> None:
    name, server, _ = framework

    async def talk() -> Any:
        async with websockets.connect(url(server, "/ws/close")) as ws:
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            return caught.value.rcvd

    close = run(talk())
    assert (close.code, close.reason) == (4002, f"bye from {name}")


def test_denial_response(framework: tuple[str, ServerProcess, Path]) -> None:
    name, server, _ = framework
    with pytest.raises(InvalidStatus) as caught:
        run(websockets.connect(url(server, "/ws/deny")))
    response = caught.value.response
    assert response.status_code == 401
    assert bytes(response.body) == f"nope {name}".encode()


def test_unknown_websocket_route_is_refused(framework: tuple[str, ServerProcess, Path]) -> None:
    _, server, _ = framework
    with pytest.raises(InvalidStatus) as caught:
        run(websockets.connect(url(server, "/ws/nowhere")))
    assert caught.value.response.status_code in (403, 404)


def test_many_concurrent_connections(framework: tuple[str, ServerProcess, Path]) -> None:
    _, server, _ = framework

    async def one(index: int) -> list[str]:
        async with websockets.connect(url(server, "/ws/echo")) as ws:
            replies = []
            for turn in range(5):
                await ws.send(f"{index}-{turn}")
                replies.append(await ws.recv())
            return replies

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(one(index) for index in range(50)))

    assert run(many()) == [[f"{index}-{turn}" for turn in range(5)] for index in range(50)]

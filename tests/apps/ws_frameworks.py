"""The WebSocket endpoints that `apps.starlette_app` and `apps.fastapi_app` both serve.

Starlette's and FastAPI's WebSocket class is the same, so one set of endpoints,
labelled with the framework's name, serves both apps:

  /ws/echo            accept; echo text and bytes until the client leaves
  /ws/json            accept; answer each JSON message with {"got": ..., "greeting": state}
                      (the app's lifespan state)
  /ws/items/{id}?q=   accept with the client's first subprotocol; send {"id", "q", "root_path"}
  /ws/close           accept, then close with 4002 "bye from <framework>"
  /ws/deny            refuse with an HTTP response: 401 "nope <framework>"
Each disconnect is recorded as "<framework> disconnect <code>" (apps.lifespan_apps.record).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from apps.lifespan_apps import record


def websocket_endpoints(framework: str) -> dict[str, Any]:
    """Route path -> endpoint, for `framework`'s app."""
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect as exc:
            record(f"{framework} disconnect {exc.code}")

    async def json_messages(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_json()
                await websocket.send_json({"got": data,
                                           "greeting": websocket.state.greeting})
        except WebSocketDisconnect as exc:
            record(f"{framework} disconnect {exc.code}")

    async def item(websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol=offered[0] if offered else None)
        await websocket.send_json({"id": websocket.path_params["item_id"],
                                   "q": websocket.query_params.get("q"),
                                   "root_path": websocket.scope["root_path"]})
        await websocket.close()

    async def close(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(code=4002, reason=f"bye from {framework}")

    async def deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse(f"nope {framework}", 401))

    return {"/ws/echo": echo, "/ws/json": json_messages, "/ws/items/{item_id:int}": item,
            "/ws/close": close, "/ws/deny": deny}

"""Starlette on Qactuar: `qactuar starlette_app:app` (or mounted by qactuar_config.json)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from Starlette")


async def about(request: Request) -> JSONResponse:
    # Mounted at /starlette, root_path is "/starlette" and url_for includes it.
    return JSONResponse({"framework": "starlette", "root_path": request.scope["root_path"],
                         "self": str(request.url_for("about"))})


async def echo(websocket: WebSocket) -> None:
    # A WebSocket: each text message comes back, until the client closes.
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(f"echo: {message}")


app = Starlette(routes=[Route("/", index), Route("/about", about), WebSocketRoute("/echo", echo)])

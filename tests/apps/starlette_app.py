"""A Starlette app for the end-to-end tests: JSON, uploads, streaming, background tasks.

Routes:
  GET  /json                  {"framework", "greeting" (from lifespan state), "root_path", "query"}
  POST /echo-json             {"received": <the JSON body>}
  POST /upload                multipart: file "file", field "note" -> name, type, size, sha256
  GET  /stream?n=K            K lines "line <i>" via StreamingResponse
  POST /background/{token}    answers at once; a background task then waits for
                              POST /release/{token} and marks the token done
                              (kept in the events file: see apps.background_tokens)
  GET  /background/{token}    {"done": bool}
  GET  /items, /items/{id}    a small collection (mounted under /api in the APPS test)
  GET  /file                  this module's source as a FileResponse (Range requests too)
  /ws/...                     the WebSocket endpoints of apps.ws_frameworks
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from apps import background_tokens
from apps.ws_frameworks import websocket_endpoints

ITEMS = {1: "apple", 2: "pear", 3: "plum"}

@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from starlette lifespan"}


async def json_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({
        "framework": "starlette",
        "greeting": request.state.greeting,
        "root_path": request.scope["root_path"],
        "query": dict(request.query_params),
    })


async def echo_json(request: Request) -> JSONResponse:
    return JSONResponse({"received": await request.json()})


async def upload(request: Request) -> JSONResponse:
    async with request.form() as form:
        file = form["file"]
        assert not isinstance(file, str)
        content = await file.read()
        return JSONResponse({
            "filename": file.filename,
            "content_type": file.content_type,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "note": form["note"],
        })


async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "5"))

    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            await asyncio.sleep(0)
            yield f"line {i}\n".encode()

    return StreamingResponse(lines(), media_type="text/plain")


async def schedule_background(request: Request) -> JSONResponse:
    token = request.path_params["token"]
    return JSONResponse({"scheduled": token},
                        background=BackgroundTask(background_tokens.finish_later, token))


async def background_status(request: Request) -> JSONResponse:
    token = request.path_params["token"]
    return JSONResponse({"token": token, "done": background_tokens.is_done(token)})


async def release(request: Request) -> JSONResponse:
    token = request.path_params["token"]
    background_tokens.release(token)
    return JSONResponse({"released": token})


async def list_items(request: Request) -> JSONResponse:
    return JSONResponse({"items": list(ITEMS.values()),
                         "first_url": str(request.url_for("item", item_id=1))})


async def get_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    if item_id not in ITEMS:
        return JSONResponse({"error": "no such item"}, status_code=404)
    return JSONResponse({"id": item_id, "name": ITEMS[item_id], "url": str(request.url)})


async def file(request: Request) -> FileResponse:
    return FileResponse(__file__, media_type="text/x-python")


app = Starlette(
    routes=[
        Route("/json", json_endpoint),
        Route("/echo-json", echo_json, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/background/{token}", schedule_background, methods=["POST"]),
        Route("/background/{token}", background_status, methods=["GET"]),
        Route("/release/{token}", release, methods=["POST"]),
        Route("/items", list_items),
        Route("/items/{item_id:int}", get_item, name="item"),
        Route("/file", file),
        *(WebSocketRoute(path, endpoint)
          for path, endpoint in websocket_endpoints("starlette").items()),
    ],
    lifespan=lifespan,
)

"""A FastAPI app for the end-to-end tests, with the same routes as `starlette_app`.

Routes (see `apps.starlette_app` for the shared ones):
  GET  /json, POST /echo-json, POST /upload, GET /stream?n=K,
  POST /background/{token}, GET /background/{token}, POST /release/{token}
  POST /items                 a pydantic-validated JSON body (422 when invalid)
  GET  /file                  this module's source as a FileResponse (Range requests too)
  /ws/...                     the WebSocket endpoints of apps.ws_frameworks
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel

from apps import background_tokens
from apps.ws_frameworks import websocket_endpoints


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from fastapi lifespan"}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/json")
async def json_endpoint(request: Request) -> dict[str, Any]:
    return {
        "framework": "fastapi",
        "greeting": request.state.greeting,
        "root_path": request.scope["root_path"],
        "query": dict(request.query_params),
    }


@app.post("/echo-json")
async def echo_json(request: Request) -> dict[str, Any]:
    return {"received": await request.json()}


@app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "price": item.price, "tags": item.tags,
            "with_tax": round(item.price * 1.2, 2)}


@app.post("/upload")
async def upload(file: Annotated[UploadFile, File()],
                 note: Annotated[str, Form()]) -> dict[str, Any]:
    content = await file.read()
    return {
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "note": note,
    }


@app.get("/stream")
async def stream(n: int = 5) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"line {i}\n".encode()

    return StreamingResponse(lines(), media_type="text/plain")


@app.post("/background/{token}")
async def schedule_background(token: str, tasks: BackgroundTasks) -> dict[str, Any]:
    tasks.add_task(background_tokens.finish_later, token)
    return {"scheduled": token}


@app.get("/background/{token}")
async def background_status(token: str) -> dict[str, Any]:
    return {"token": token, "done": background_tokens.is_done(token)}


@app.post("/release/{token}")
async def release(token: str) -> dict[str, Any]:
    background_tokens.release(token)
    return {"released": token}


@app.get("/file")
async def file() -> FileResponse:
    return FileResponse(__file__, media_type="text/x-python")


for _path, _endpoint in websocket_endpoints("fastapi").items():
    app.add_api_websocket_route(_path, _endpoint)

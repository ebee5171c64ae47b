"""A Starlette app that calls another service with qactuar.client (the async interface).

The backend's URL comes from the BACKEND_URL environment variable.  One Client is
opened at startup (lifespan) and shared by every request:
  /relay?path=P        the backend's answer to GET P, with its status
  /fan-out?n=N         N concurrent backend calls, their texts joined
  /backend-down        a call to a closed port: the ClientError's code and message
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from qactuar.client import Client, ClientError


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with Client(timeout=5) as client:
        app.state.client = client
        yield


async def relay(request: Request) -> PlainTextResponse:
    backend = os.environ["BACKEND_URL"]
    answer = await request.app.state.client.get(backend + request.query_params["path"])
    return PlainTextResponse(answer.text, status_code=answer.status_code)


async def fan_out(request: Request) -> PlainTextResponse:
    backend = os.environ["BACKEND_URL"]
    client = request.app.state.client
    n = int(request.query_params["n"])
    answers = await asyncio.gather(*[client.get(f"{backend}/sleep?s=0.05") for _ in range(n)])
    return PlainTextResponse(",".join(a.text for a in answers))


async def backend_down(request: Request) -> JSONResponse:
    try:
        await request.app.state.client.get("http://127.0.0.1:1/")
    except ClientError as error:
        return JSONResponse({"code": error.code, "message": str(error)}, status_code=502)
    return JSONResponse({"code": 0}, status_code=500)


app = Starlette(lifespan=lifespan, routes=[
    Route("/relay", relay), Route("/fan-out", fan_out), Route("/backend-down", backend_down),
])

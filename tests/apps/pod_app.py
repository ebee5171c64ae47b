"""Apps that read beans' state: through the lifespan state and through current_pod()."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from qactuar.pod import current_pod


async def counter(request: Request) -> JSONResponse:
    bean = request.state.pod.get_bean("counter")
    return JSONResponse({"count": bean.instance.count, "state": bean.state,
                         "same_pod": request.state.pod is current_pod()})


async def missing(request: Request) -> PlainTextResponse:
    try:
        current_pod().get_bean("missing")
    except LookupError as exc:
        return PlainTextResponse(f"{type(exc).__name__}: {exc}", status_code=404)
    return PlainTextResponse("found?")


async def block(request: Request) -> PlainTextResponse:
    time.sleep(float(request.query_params.get("seconds", "0.5")))  # blocks the event loop
    return PlainTextResponse("blocked")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    print("APP startup", flush=True)
    yield
    print("APP shutdown", flush=True)


app = Starlette(routes=[Route("/counter", counter), Route("/missing", missing),
                        Route("/block", block)], lifespan=lifespan)


async def gate_app(scope, receive, send):
    """Says whether the gate bean was ready when this request was served."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    ready = current_pod().get_bean("gate").instance.is_ready
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"gate ready={ready}".encode()})

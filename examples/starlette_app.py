"""Starlette on Qactuar: `qactuar starlette_app:app` (or mounted by qactuar_config.json)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from Starlette")


async def about(request: Request) -> JSONResponse:
    # Mounted at /starlette, root_path is "/starlette" and url_for includes it.
    return JSONResponse({"framework": "starlette", "root_path": request.scope["root_path"],
                         "self": str(request.url_for("about"))})


app = Starlette(routes=[Route("/", index), Route("/about", about)])

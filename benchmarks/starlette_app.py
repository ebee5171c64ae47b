"""The Starlette scenario's app: one JSON endpoint, as a small real-world app looks.

Its own module (not an attribute built on demand in apps.py) because hypercorn
looks attributes up in the module's namespace, and so that the other apps do
not need Starlette installed.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.apps import JSON_PAYLOAD


async def json_endpoint(request: Request) -> JSONResponse:
    return JSONResponse(JSON_PAYLOAD)


app = Starlette(routes=[Route("/", json_endpoint)])

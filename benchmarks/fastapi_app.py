"""The FastAPI scenario's app: one JSON endpoint, the Starlette scenario's payload.

Its own module (as `starlette_app.py`) so that hypercorn finds the attribute in
the module's namespace and the other apps do not need FastAPI installed.  The
endpoint returns a dict, so FastAPI's own response path (serialisation through
`jsonable_encoder` and `JSONResponse`) runs as in a typical app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from benchmarks.apps import JSON_PAYLOAD

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/")
async def json_endpoint() -> dict[str, Any]:
    return JSON_PAYLOAD

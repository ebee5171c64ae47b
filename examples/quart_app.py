"""Quart (Flask's API on ASGI) on Qactuar: `qactuar quart_app:app`."""

import asyncio
from collections.abc import AsyncIterator

from quart import Quart, Response

app = Quart(__name__)


@app.route("/")
async def index() -> str:
    return "Hello from Quart"


@app.route("/countdown")
async def countdown() -> Response:
    async def numbers() -> AsyncIterator[bytes]:
        for n in range(3, 0, -1):
            yield f"{n}\n".encode()
            await asyncio.sleep(0.1)
        yield b"liftoff\n"

    return Response(numbers(), content_type="text/plain")

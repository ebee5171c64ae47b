"""A Quart app (Flask's API on ASGI) for the framework matrix.

Routes:
  GET  /                    "Hello from Quart"
  GET  /json?...            {"framework", "query", "root_path", "url_for", "greeting"}
  POST /echo-json           {"received": <the JSON body>}
  POST /form                urlencoded fields as JSON
  POST /upload              multipart: file "file", field "note" -> name, type, size, sha256
  GET  /stream?n=K          K lines from an async generator (a streamed response)
  GET  /file                this module's source via send_file
  GET  /crash               raises: Quart's 500
  WS   /ws                  sends {"framework", "root_path", "url_for", "greeting"}, then
                            echoes each text message as "quart: <text>" and bytes as-is
`greeting` is set by a before_serving hook, which runs in the ASGI lifespan.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from quart import Quart, Response, jsonify, request, send_file, url_for, websocket

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    app.config["GREETING"] = "hello from quart lifespan"


@app.route("/")
async def index() -> str:
    return "Hello from Quart"


@app.route("/json")
async def json_view() -> Any:
    return jsonify({"framework": "quart", "query": request.args.to_dict(),
                    "root_path": request.root_path, "url_for": url_for("json_view"),
                    "greeting": app.config.get("GREETING")})


@app.post("/echo-json")
async def echo_json() -> Any:
    return {"received": await request.get_json()}


@app.post("/form")
async def form() -> Any:
    fields = await request.form
    return {"fields": {key: fields.getlist(key) for key in fields}}


@app.post("/upload")
async def upload() -> Any:
    files = await request.files
    fields = await request.form
    file = files["file"]
    content = file.read()
    return {"filename": file.filename, "content_type": file.content_type, "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), "note": fields["note"]}


@app.route("/stream")
async def stream() -> Response:
    count = int(request.args.get("n", "5"))

    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            await asyncio.sleep(0)
            yield f"line {i}\n".encode()

    return Response(lines(), content_type="text/plain")


@app.route("/file")
async def file() -> Response:
    return await send_file(__file__, mimetype="text/x-python")


@app.route("/crash")
async def crash() -> str:
    raise RuntimeError("the Quart view crashed on purpose")


@app.websocket("/ws")
async def echo_socket() -> None:
    await websocket.send_json({"framework": "quart", "root_path": websocket.root_path,
                               "url_for": url_for("echo_socket"),
                               "greeting": app.config.get("GREETING")})
    while True:
        message = await websocket.receive()
        await websocket.send(f"quart: {message}" if isinstance(message, str) else message)

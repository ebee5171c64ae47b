"""Tornado apps served through `qactuar.contrib.tornado`, for the adapter's tests.

`app` wraps a whole Application; `lone_handler` wraps one RequestHandler class.
Routes of `app`:
  ANY  /echo/(.*)        every method Tornado supports (OPTIONS included), sync:
                         JSON of method, path, path arg, uri, query, headers, body, client
  GET  /async            an async handler that awaits before answering
  GET  /headers          set_header, add_header (twice), set_cookie (twice), clear_header
  GET  /stream?n=K       K lines, each flush()ed and awaited: a streamed response
  POST /form             form or multipart body: fields and files (name, type, size, sha256)
  POST /upload-stream    @stream_request_body: data_received chunks counted and hashed;
                         ?limit=N sets the handler's max body size; prepare() and
                         on_connection_close record "tornado upload started/closed <token>"
  GET  /error/http/(N)   raises HTTPError(N)
  GET  /error/crash      raises ValueError (500, Tornado's error page)
  GET  /error/custom     raises HTTPError(418); write_error is overridden
  GET  /wait/(token)     waits for the client to leave; records on_connection_close
  GET  /slow/(token)     never answers by itself; records on_connection_close
  GET  /firehose/(token) flush()es chunks until a write fails; records "tornado firehose
                         stopped <token>" when flush() raises StreamClosedError
  GET  /redirect         redirects to /echo/target (reverse_url)
  GET  /scope            the ASGI root_path seen through request.asgi_scope
  GET  /files/(.*)       StaticFileHandler over this directory (tests/apps)
Events go to the file named by TEST_EVENTS_FILE (see apps.lifespan_apps.record).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.web import (
    Application,
    HTTPError,
    RequestHandler,
    StaticFileHandler,
    stream_request_body,
)

from apps.lifespan_apps import record
from qactuar.contrib.tornado import TornadoApp


class EchoHandler(RequestHandler):
    SUPPORTED_METHODS = (*RequestHandler.SUPPORTED_METHODS,)

    def _echo(self, rest: str) -> None:
        request = self.request
        self.write({
            "method": request.method,
            "path": request.path,
            "rest": rest,
            "uri": request.uri,
            "query": {k: self.get_query_arguments(k) for k in request.query_arguments},
            "headers": {name: value for name, value in request.headers.get_all()
                        if name.startswith("X-")},
            "body": request.body.decode("utf-8", "replace"),
            "remote_ip": request.remote_ip,
            "protocol": request.protocol,
            "host": request.host,
            "version": request.version,
        })

    def get(self, rest: str) -> None:
        self._echo(rest)

    def head(self, rest: str) -> None:
        self.set_header("X-Head", "yes")
        self._echo(rest)

    post = put = patch = delete = get

    def options(self, rest: str) -> None:
        self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        self.set_status(204)


class AsyncHandler(RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(0.01)
        self.write({"async": True, "loop": type(asyncio.get_running_loop()).__module__})


class HeadersHandler(RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("X-Default", "from set_default_headers")
        self.set_header("X-Removed", "should not be sent")

    def get(self) -> None:
        self.set_header("X-Single", "one")
        self.add_header("X-Multi", "first")
        self.add_header("X-Multi", "second")
        self.set_cookie("session", "abc123", httponly=True)
        self.set_cookie("theme", "dark", path="/headers")
        self.clear_header("X-Removed")
        self.write("headers set")


class StreamHandler(RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        count = int(self.get_query_argument("n", "5"))
        for i in range(count):
            self.write(f"line {i}\n")
            await self.flush()


class FormHandler(RequestHandler):
    def post(self) -> None:
        files = {
            field: [{"filename": f.filename, "content_type": f.content_type,
                     "size": len(f.body), "sha256": hashlib.sha256(f.body).hexdigest()}
                    for f in uploads]
            for field, uploads in self.request.files.items()
        }
        fields = {name: self.get_body_arguments(name) for name in self.request.body_arguments}
        self.write({"fields": fields, "files": files})


@stream_request_body
class StreamedUploadHandler(RequestHandler):
    async def prepare(self) -> None:
        # An async prepare() must be over before the first data_received().
        await asyncio.sleep(0.05)
        self.chunks = 0
        self.size = 0
        self.digest = hashlib.sha256()
        self.token = self.get_query_argument("token", "")
        record(f"tornado upload started {self.token}")
        limit = self.get_query_argument("limit", None)
        if limit is not None:
            self.request.connection.set_max_body_size(int(limit))  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        self.chunks += 1
        self.size += len(chunk)
        self.digest.update(chunk)
        await asyncio.sleep(0)  # an async data_received is awaited (flow control)

    def post(self) -> None:
        self.write({"chunks": self.chunks, "size": self.size,
                    "sha256": self.digest.hexdigest()})

    put = post

    def on_connection_close(self) -> None:
        record(f"tornado upload closed {self.token}")
        super().on_connection_close()


class ErrorHandler(RequestHandler):
    def get(self, kind: str, status: str | None = None) -> None:
        if kind == "http":
            raise HTTPError(int(status or 500))
        raise ValueError("the handler crashed on purpose")


class CustomErrorHandler(RequestHandler):
    def get(self) -> None:
        raise HTTPError(418, reason="I'm a teapot")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": status_code, "reason": self._reason}))


class WaitHandler(RequestHandler):
    async def get(self, token: str) -> None:
        self.token = token
        self.gone = asyncio.Event()
        record(f"tornado waiting {token}")
        self.set_header("Content-Type", "text/plain")
        self.write("waiting\n")
        await self.flush()
        await asyncio.wait_for(self.gone.wait(), 20)

    def on_connection_close(self) -> None:
        record(f"tornado closed {self.token}")
        self.gone.set()


class SlowStartHandler(RequestHandler):
    """Never starts its response by itself: it waits until the request is given up."""

    async def get(self, token: str) -> None:
        self.token = token
        self.gone = asyncio.Event()
        record(f"tornado slow started {token}")
        await asyncio.wait_for(self.gone.wait(), 20)

    def on_connection_close(self) -> None:
        record(f"tornado slow closed {self.token}")
        self.gone.set()


class FirehoseHandler(RequestHandler):
    """Streams until the client is gone, as Tornado's docs show: flush() raises then."""

    async def get(self, token: str) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        try:
            while True:
                self.write(b"x" * 16384)
                await self.flush()
        except StreamClosedError:
            record(f"tornado firehose stopped {token}")


class RedirectHandler(RequestHandler):
    def get(self) -> None:
        self.redirect(self.reverse_url("echo", "target"))


class ScopeHandler(RequestHandler):
    def get(self) -> None:
        scope = self.request.asgi_scope  # type: ignore[attr-defined]
        self.write({"root_path": scope["root_path"], "path": self.request.path,
                    "uri": self.request.uri})


class LoneHandler(RequestHandler):
    def initialize(self, greeting: str) -> None:
        self.greeting = greeting

    def get(self) -> None:
        self.write({"greeting": self.greeting, "path": self.request.path})


application = Application([
    (r"/echo/(.*)", EchoHandler, {}, "echo"),
    (r"/async", AsyncHandler),
    (r"/headers", HeadersHandler),
    (r"/stream", StreamHandler),
    (r"/form", FormHandler),
    (r"/upload-stream", StreamedUploadHandler),
    (r"/error/(http)/(\d+)", ErrorHandler),
    (r"/error/(crash)", ErrorHandler),
    (r"/error/custom", CustomErrorHandler),
    (r"/wait/(\w+)", WaitHandler),
    (r"/slow/(\w+)", SlowStartHandler),
    (r"/firehose/(\w+)", FirehoseHandler),
    (r"/redirect", RedirectHandler),
    (r"/scope", ScopeHandler),
    (r"/files/(.*)", StaticFileHandler, {"path": str(Path(__file__).parent)}),
])

app = TornadoApp(application)
lone_handler = TornadoApp(LoneHandler, handler_kwargs={"greeting": "hello from a lone handler"})

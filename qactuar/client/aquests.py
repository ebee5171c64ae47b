"""The aquests module interface: queue requests with module functions, run them all with
`fetchall()`, get each answer in a callback.

    from qactuar import client as aquests

    aquests.configure(3, callback=lambda response: print(response.status_code))
    for page in range(10):
        aquests.get("http://127.0.0.1:5000/", params={"page": page})
    aquests.fetchall()

Owns the session of a script: its configuration (`configure()`), the queue of
requests, the scheduling of `fetchall()` (its own event loop, uvloop when
installed; `workers` x `http2_constreams` requests in flight; requests queued
by callbacks run in the same call), the callbacks, the default printed line and
the loggers.  `aquests_request.py` encodes what is sent, `aquests_exchange.py`
runs one request through the engine (`Client`) or the WebSocket client, and
`aquests_response.py` is what the callbacks receive.  The XML-RPC and JSON-RPC
stubs queue HTTP requests here; the gRPC and database stubs (`backends/`) queue
calls that `backends/exchange.py` runs in the same workers, in pools that live as
long as one fetchall().  Not thread-safe, like aquests: one script, one session.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from qactuar.client.aquests_exchange import http_exchange, websocket_exchange
from qactuar.client.aquests_request import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    QueuedRequest,
    auth_value,
    build_http,
    header_pairs,
    ws_message,
)
from qactuar.client.aquests_response import AquestsResponse, ResponseError, printable

__all__ = [
    "OPCODE_BINARY", "OPCODE_CLOSE", "OPCODE_CONTINUATION", "OPCODE_PING", "OPCODE_PONG",
    "OPCODE_TEXT", "AquestsResponse", "ResponseError", "configure", "countfin", "countreq",
    "delete", "deletejson", "deletexml", "fetchall", "get", "getjson", "getxml", "grpc",
    "head", "jsonrpc", "mongodb", "options", "patch", "patchform", "patchjson", "patchnvp",
    "patchxml", "post", "postform", "postgresql", "postjson", "postnvp", "postxml", "put",
    "putform", "putjson", "putnvp", "putxml", "qsize", "redis", "result", "rpc", "sqlite3",
    "trace", "upload", "ws", "wss",
]


# -- loggers ------------------------------------------------------------------------------


class ScreenLogger:
    """aquests' logger contract: `log(msg, type="info")` and `trace()` (the current
    exception).  Info lines are printed as they are; other types get a `[type]` prefix."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def log(self, msg: str, type: str = "info") -> None:
        stream = self.stream or sys.stdout
        stream.write(f"{msg}\n" if type == "info" else f"[{type}] {msg}\n")
        stream.flush()

    __call__ = log

    def trace(self, name: str | None = None) -> None:
        stream = self.stream or sys.stderr
        stream.write(("" if name is None else f"[expt] {name}\n") + traceback.format_exc())
        stream.flush()


class FileLogger(ScreenLogger):
    """Appends timestamped lines to `<path>/<name>.log` (the directory is made)."""

    def __init__(self, path: str, name: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.filename = os.path.join(path, f"{name}.log")
        super().__init__(None)

    def log(self, msg: str, type: str = "info") -> None:
        stamp = time.strftime("%Y.%m.%d %H:%M:%S")
        with open(self.filename, "a", encoding="utf-8") as file:
            file.write(f"{stamp} [{type}] {msg}\n")

    __call__ = log

    def trace(self, name: str | None = None) -> None:
        self.log((f"{name}: " if name else "") + traceback.format_exc().rstrip(), "expt")


class _Loggers:
    """`from qactuar.client.aquests import logger` gives aquests' `lib.logger` factories."""

    screen_logger = ScreenLogger
    file_logger = FileLogger


logger = _Loggers()


# -- the session --------------------------------------------------------------------------


class _Session:
    """What configure() set and what is queued."""

    def __init__(self) -> None:
        self.configured = False
        self.workers = 1
        self.logger: Any = ScreenLogger()
        self.callback: Callable[[AquestsResponse], Any] | None = None
        self.timeout: float = 10
        self.cookie = False
        self.force_http1 = False
        self.http2_constreams = 1
        self.allow_redirects = True
        self.qrandom = False
        self.use_pool = True
        self.tracking = False
        self.verify: Any = True
        self.cert: Any = None
        self.queue: deque[QueuedRequest] = deque()
        self.next_id = 0
        self.requested = 0
        self.finished = 0
        self.cookie_jar: Any = None
        self.run: _Run | None = None


_session = _Session()


def configure(workers: int = 1, logger: Any = None, callback: Any = None, timeout: float = 10,
              cookie: bool = False, force_http1: bool = False, http2_constreams: int = 1,
              allow_redirects: bool = True, qrandom: bool = False, use_pool: bool = True,
              dns: list[str] | None = None, tracking: bool = False, *, verify: Any = True,
              cert: Any = None) -> None:
    """Set up the session (aquests' parameters, same meanings).

    workers: connections in flight; with HTTP/2, `workers` x `http2_constreams` streams.
    logger: an object with log(msg, type="info") and trace(); default: the screen.
    callback: called with each Response (default: print one line per response).
    timeout: seconds for connecting, for each wait on the server, and for a WebSocket
        answer; beyond it the response is 702.
    cookie: keep the cookies servers set, for the whole session.
    force_http1: never offer HTTP/2.  http2_constreams: streams per HTTP/2 connection.
    allow_redirects: follow 301/302/303/307/308.  qrandom: take queued requests at random.
    use_pool: False opens a new connection for every request.
    dns: refused unless empty: names are resolved by the system's resolver (getaddrinfo);
        list DNS servers in /etc/resolv.conf instead.
    tracking: log the memory allocated while fetchall() runs (tracemalloc).
    verify, cert (not in aquests): TLS verification (True, False, a CA file, an SSLContext)
        and a client certificate, as for `Client`.
    """
    if dns:
        raise ValueError(
            "configure(dns=...): qactuar.client resolves host names with the system "
            "resolver (getaddrinfo), so a list of DNS servers cannot be honoured; put "
            "them in /etc/resolv.conf (or resolve the name yourself and put the address "
            "in the URL)")
    for name, value in (("workers", workers), ("http2_constreams", http2_constreams)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"configure({name}=...) must be a whole number >= 1, "
                             f"not {value!r}")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"configure(timeout=...) must be a number of seconds > 0, "
                         f"not {timeout!r}")
    if logger is not None and not (hasattr(logger, "log") or callable(logger)):
        raise TypeError("configure(logger=...) needs an object with log(msg, type) "
                        "and trace()")
    session = _session
    session.workers = workers
    session.logger = logger if logger is not None else ScreenLogger()
    session.callback = callback
    session.timeout = timeout
    session.cookie = bool(cookie)
    session.force_http1 = bool(force_http1)
    session.http2_constreams = http2_constreams
    session.allow_redirects = bool(allow_redirects)
    session.qrandom = bool(qrandom)
    session.use_pool = bool(use_pool)
    session.tracking = bool(tracking)
    session.verify = verify
    session.cert = cert
    if not session.cookie:
        session.cookie_jar = None
    session.configured = True


def _log(msg: str, type: str = "info") -> None:
    target = _session.logger
    (target.log if hasattr(target, "log") else target)(msg, type)


def log(msg: str, type: str = "info") -> None:
    """Write a line through the session's logger."""
    _log(msg, type)


def qsize() -> int:
    """Requests queued and not started yet."""
    return len(_session.queue)


def countreq() -> int:
    """Requests started by the current (or last) fetchall()."""
    return _session.requested


def countfin() -> int:
    """Requests answered (callback called) by the current (or last) fetchall()."""
    return _session.finished


def _enqueue(request: QueuedRequest) -> None:
    session = _session
    if not session.configured:
        configure()
    meta = request.meta
    meta["req_id"] = session.next_id
    meta["req_method"] = request.name
    meta["req_callback"] = request.callback
    session.next_id += 1
    session.queue.append(request)
    if session.run is not None:
        session.run.wake()


def _meta(meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
    return dict(meta)  # the caller's dict may be reused for the next call


def _http_call(name: str, method: str, body_type: str | None = None,
               accept: str | None = None) -> Callable[..., None]:
    def call(url: str, params: Any = None, headers: Any = None, auth: Any = None,
             callback: Callable[[AquestsResponse], Any] | None = None,
             meta: dict[str, Any] | None = None) -> None:
        _enqueue(build_http(name, method, url, params, headers, auth, callback, _meta(meta),
                            body_type, accept))

    call.__name__ = call.__qualname__ = name
    what = f"{method} request" + (f" with a {body_type} body" if body_type else "")
    if accept:
        what += f" that accepts {accept}"
    call.__doc__ = (f"Queue a {what}: {name}(url, params=None, headers=None, auth=None, "
                    "callback=None, meta=None).")
    return call


get = _http_call("get", "GET")
delete = _http_call("delete", "DELETE")
head = _http_call("head", "HEAD")
options = _http_call("options", "OPTIONS")
trace = _http_call("trace", "TRACE")
post = _http_call("post", "POST")
put = _http_call("put", "PUT")
patch = _http_call("patch", "PATCH")
upload = _http_call("upload", "POST")
getjson = _http_call("getjson", "GET", accept="application/json")
deletejson = _http_call("deletejson", "DELETE", accept="application/json")
getxml = _http_call("getxml", "GET", accept="text/xml")
deletexml = _http_call("deletexml", "DELETE", accept="text/xml")
postjson = _http_call("postjson", "POST", "json")
putjson = _http_call("putjson", "PUT", "json")
patchjson = _http_call("patchjson", "PATCH", "json")
postxml = _http_call("postxml", "POST", "xml")
putxml = _http_call("putxml", "PUT", "xml")
patchxml = _http_call("patchxml", "PATCH", "xml")
postform = _http_call("postform", "POST", "form")
putform = _http_call("putform", "PUT", "form")
patchform = _http_call("patchform", "PATCH", "form")
postnvp = _http_call("postnvp", "POST", "nvp")
putnvp = _http_call("putnvp", "PUT", "nvp")
patchnvp = _http_call("patchnvp", "PATCH", "nvp")


def ws(url: str, params: Any = None, headers: Any = None, auth: Any = None,
       callback: Callable[[AquestsResponse], Any] | None = None,
       meta: dict[str, Any] | None = None) -> None:
    """Queue a WebSocket exchange: connect, send one message, answer with the next one.

    params: str (text), bytes (binary), an (opcode, data) tuple (OPCODE_TEXT,
    OPCODE_BINARY, OPCODE_PING, OPCODE_PONG, OPCODE_CLOSE), or None to only receive.
    The response's `content` is (opcode, data), `opcode` and `data` apart.
    """
    if not isinstance(url, str) or not url.lower().startswith(("ws://", "wss://")):
        raise ValueError(f"ws(): the URL must start with ws:// or wss://, not {url!r}")
    name = "wss" if url.lower().startswith("wss://") else "ws"
    pairs = header_pairs(headers)
    authorization = _ws_authorization(auth)
    if authorization is not None:
        pairs.append(("Authorization", authorization))
    _enqueue(QueuedRequest(name, "GET", url, pairs, callback=callback, meta=_meta(meta),
                           message=ws_message(params)))


wss = ws


def _ws_authorization(auth: Any) -> str | None:
    """Basic for (user, password), Bearer for (token,): a WebSocket handshake cannot
    answer a Digest challenge."""
    import base64

    auth = auth_value(auth)
    if auth is None:
        return None
    if isinstance(auth, tuple) and len(auth) == 2:
        return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if isinstance(auth, tuple) and len(auth) == 1:
        return f"Bearer {auth[0]}"
    raise TypeError("ws(auth=...) is (user, password) or (token,)")


class _RPCMethod:
    """`stub.method(*params)` queues one RPC call; `stub.a.b` names method "a.b"."""

    def __init__(self, stub: _RPCStub, name: str) -> None:
        self._stub = stub
        self._name = name

    def __getattr__(self, name: str) -> _RPCMethod:
        if name.startswith("__"):
            raise AttributeError(name)
        return _RPCMethod(self._stub, f"{self._name}.{name}")

    def __call__(self, *params: Any, **kwargs: Any) -> None:
        from qactuar.client.backends.rpc import jsonrpc_body, xmlrpc_body

        stub = self._stub
        if stub.protocol == "jsonrpc":
            body = jsonrpc_body(self._name, params, kwargs)
            content_type = "application/json"
        else:
            if kwargs:
                raise TypeError(f"{self._name}(): XML-RPC takes positional params only")
            body = xmlrpc_body(self._name, params)
            content_type = "text/xml"
        headers = [*header_pairs(stub.headers), ("Content-Type", content_type)]
        request = build_http(stub.protocol, "POST", stub.url, body, headers, stub.auth,
                             stub.callback, _meta(stub.meta))
        request.rpc_method = self._name
        request.rpc_protocol = stub.protocol
        _enqueue(request)


class _RPCStub:
    """What `rpc(url)` and `jsonrpc(url)` return: each method call is one queued request."""

    def __init__(self, url: str, headers: Any, auth: Any, callback: Any, meta: Any,
                 protocol: str = "rpc") -> None:
        self.url = url
        self.headers = headers
        self.auth = auth
        self.callback = callback
        self.meta = meta
        self.protocol = protocol

    def __getattr__(self, name: str) -> _RPCMethod:
        if name.startswith("__"):
            raise AttributeError(name)
        return _RPCMethod(self, name)


def rpc(url: str, headers: Any = None, auth: Any = None,
        callback: Callable[[AquestsResponse], Any] | None = None,
        meta: dict[str, Any] | None = None) -> _RPCStub:
    """An XML-RPC stub: `rpc(url).method(*params)` queues a call; the response's `data`
    is the result (or the `xmlrpc.client.Fault` the server answered)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"rpc(): the URL must be absolute, not {url!r}")
    return _RPCStub(url, headers, auth, callback, meta)


def jsonrpc(url: str, headers: Any = None, auth: Any = None,
            callback: Callable[[AquestsResponse], Any] | None = None,
            meta: dict[str, Any] | None = None) -> _RPCStub:
    """A JSON-RPC 2.0 stub: `jsonrpc(url).method(*params)` (or keyword params) queues a
    call; the response's `data` is the result (or the JSONRPCFault of an error object)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"jsonrpc(): the URL must be absolute, not {url!r}")
    return _RPCStub(url, headers, auth, callback, meta, "jsonrpc")


def _backend_stub(kind: str, server: str, dbname: Any, auth: Any, callback: Any, meta: Any,
                  headers: Any = None) -> Any:
    """A gRPC or database stub whose method calls queue requests (backends/stubs.py)."""
    from qactuar.client.backends.stubs import Stub

    headers_pairs = header_pairs(headers)
    meta = _meta(meta)

    def submit(call: Any) -> None:
        _enqueue(QueuedRequest(kind, call.method, call.url, headers_pairs, callback=callback,
                               meta=dict(meta), backend=call))

    return Stub(kind, server, dbname, auth, submit, headers_pairs)


def grpc(url: str, headers: Any = None, auth: Any = None,
         callback: Callable[[AquestsResponse], Any] | None = None,
         meta: dict[str, Any] | None = None) -> Any:
    """A gRPC stub for `http(s)://host:port/package.Service`: `stub.Method(message)` queues
    a call over HTTP/2; `data` is the answer message (a list for a streaming answer)."""
    return _backend_stub("grpc", url, None, auth_value(auth), callback, meta, headers)


def postgresql(server: str, dbname: str | None = None, auth: Any = None,
               callback: Callable[[AquestsResponse], Any] | None = None,
               meta: dict[str, Any] | None = None) -> Any:
    """A PostgreSQL stub (asyncpg): `execute(sql, *args)` / `do(sql)`; `data` is the rows
    as dicts."""
    return _backend_stub("postgresql", server, dbname, auth, callback, meta)


def redis(server: str, dbname: Any = None, auth: Any = None,
          callback: Callable[[AquestsResponse], Any] | None = None,
          meta: dict[str, Any] | None = None) -> Any:
    """A Redis stub (redis-py asyncio): every command is a method, `dbo.get(key)`."""
    return _backend_stub("redis", server, dbname, auth, callback, meta)


def mongodb(server: str, dbname: str | None = None, auth: Any = None,
            callback: Callable[[AquestsResponse], Any] | None = None,
            meta: dict[str, Any] | None = None) -> Any:
    """A MongoDB stub (PyMongo's AsyncMongoClient): find, findone, findall, insert,
    update, updateone, upsert, upsertone, delete, findkc, get_more, kill_cursors."""
    return _backend_stub("mongodb", server, dbname, auth, callback, meta)


def sqlite3(path: str, callback: Callable[[AquestsResponse], Any] | None = None,
            meta: dict[str, Any] | None = None) -> Any:
    """A SQLite stub (aiosqlite): `execute(sql, *args)` / `do(sql)` off the event loop."""
    return _backend_stub("sqlite3", path, None, None, callback, meta)


# -- running the queue --------------------------------------------------------------------


class Result:
    """What the last fetchall() did (`aquests.result`); `report()` prints it.

    One object for the whole session, updated by each fetchall(), so that
    `aquests.result` seen through `qactuar.client` is always the current one.
    """

    def __init__(self) -> None:
        self.tasks = 0
        self.duration = 0.0
        self.bytes_recv = 0
        self.statuses: dict[int, int] = {}
        self.versions: dict[str, int] = {}

    def report(self) -> None:
        rate = self.tasks / self.duration if self.duration else 0.0
        lines = ["summary", f"- finished in: {self.duration:.2f} seconds",
                 f"- requests: {self.tasks:,} requests",
                 f"- requests/sec: {rate:.2f} requests",
                 f"- bytes received: {self.bytes_recv:,} bytes", "response status codes"]
        lines += [f"- {code}: {count:,}" for code, count in sorted(self.statuses.items())]
        lines.append("response HTTP versions")
        lines += [f"- {version}: {count:,}" for version, count in sorted(self.versions.items())]
        for line in lines:
            _log(line)


result = Result()


class _Run:
    """One fetchall(): the worker tasks and how many requests are being answered."""

    def __init__(self) -> None:
        self.active = 0
        self.changed = asyncio.Event()
        self.bytes_received = 0
        self.statuses: dict[int, int] = {}
        self.versions: dict[str, int] = {}
        self.pools: Any = None  # the RPC and database pools, made by the first such call

    def wake(self) -> None:
        self.changed.set()

    def backend_pools(self) -> Any:
        if self.pools is None:
            from qactuar.client.backends.base import Pools

            session = _session
            self.pools = Pools(limit=max(session.workers, 1),
                               timeout=float(session.timeout), verify=session.verify,
                               cert=session.cert)
        return self.pools


def fetchall() -> None:
    """Run every queued request (and those the callbacks queue) until all are answered.

    Runs its own event loop (uvloop when installed), so call it from plain code, not
    from inside a running event loop (there, use `qactuar.client.Client`).
    """
    session = _session
    if not session.configured:
        configure()
    if not session.queue:
        _log("no item in queue.")
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("fetchall() runs its own event loop and cannot be called from "
                           "a running one; in async code use qactuar.client.Client")
    if session.tracking:
        import tracemalloc

        tracemalloc.start()
    loop = _new_event_loop()
    run = session.run = _Run()
    session.requested = session.finished = 0
    started = time.monotonic()
    try:
        loop.run_until_complete(_run_queue(run))
    finally:
        session.run = None
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        if session.tracking:
            _report_memory()
    result.tasks = session.finished
    result.duration = time.monotonic() - started
    result.bytes_recv = run.bytes_received
    result.statuses = dict(run.statuses)
    result.versions = dict(run.versions)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _report_memory() -> None:
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _log(f"memory: {current / 1024:,.0f} kB allocated at the end, {peak / 1024:,.0f} kB "
         "at the peak", "memory")
    for stat in snapshot.statistics("lineno")[:5]:
        _log(f"  {stat}", "memory")


def _client_kwargs() -> dict[str, Any]:
    from qactuar.client.settings import Limits, Timeout

    session = _session
    streams = 1 if session.force_http1 else session.http2_constreams
    seconds = float(session.timeout)
    return {
        "timeout": Timeout(connect=seconds, read=seconds, write=seconds, pool=seconds),
        # Every request in flight may need its own HTTP/1.1 connection (aquests: a server
        # without HTTP/2 gets workers x http2_constreams connections).
        "limits": Limits(max_connections_per_origin=session.workers * streams,
                         max_streams_per_connection=streams),
        "http2": not session.force_http1,
        "verify": session.verify,
        "cert": session.cert,
        "follow_redirects": session.allow_redirects,
        "cookies": session.cookie,
    }


async def _run_queue(run: _Run) -> None:
    from qactuar.client import Client

    session = _session
    kwargs = _client_kwargs()
    if session.use_pool:
        client = Client(**kwargs)
    else:
        from qactuar.client.tls import client_context

        # One TLS context for the per-request clients (loading CAs costs milliseconds).
        kwargs["verify"] = client_context(session.verify, session.cert,
                                          not session.force_http1)
        kwargs["cert"] = None
        client = None
    if session.cookie:
        if session.cookie_jar is None:
            from qactuar.client.cookies import CookieJar

            session.cookie_jar = CookieJar()
        if client is not None:
            client.cookies = session.cookie_jar
    in_flight = session.workers * (1 if session.force_http1 else session.http2_constreams)
    try:
        workers = [asyncio.create_task(_worker(run, client, kwargs)) for _ in range(in_flight)]
        await asyncio.gather(*workers)
    finally:
        if client is not None:
            await client.aclose()
        if run.pools is not None:  # the pools live in this loop: closed with it
            await run.pools.aclose()


def _take() -> QueuedRequest | None:
    queue = _session.queue
    if not queue:
        return None
    if _session.qrandom and len(queue) > 1:
        index = random.randrange(len(queue))
        queue.rotate(-index)
        request = queue.popleft()
        queue.rotate(index)
        return request
    return queue.popleft()


async def _worker(run: _Run, client: Any, kwargs: dict[str, Any]) -> None:
    session = _session
    while True:
        request = _take()
        if request is None:
            if run.active == 0:
                run.wake()  # the others are waiting: nothing more can come
                return
            run.changed.clear()
            await run.changed.wait()
            continue
        run.active += 1
        session.requested += 1
        try:
            if request.backend is not None:
                from qactuar.client.backends.exchange import backend_exchange

                response = await backend_exchange(request, session, run.backend_pools())
            elif request.message is not None or request.name in ("ws", "wss"):
                response = await websocket_exchange(request, session)
            elif client is None:
                from qactuar.client import Client

                async with Client(**kwargs) as own_client:
                    if session.cookie:
                        own_client.cookies = session.cookie_jar
                    response = await http_exchange(own_client, request, session)
            else:
                response = await http_exchange(client, request, session)
            _deliver(run, request, response)
        finally:
            run.active -= 1
            if run.active == 0 and not session.queue:
                run.wake()


def _deliver(run: _Run, request: QueuedRequest, response: AquestsResponse) -> None:
    session = _session
    session.finished += 1
    run.bytes_received += len(response._body) if response.opcode is None else \
        len(_message_bytes(response.data))
    run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
    if response.version:
        run.versions[response.version] = run.versions.get(response.version, 0) + 1
    callback = request.callback
    if callback is None:
        callback = session.callback if session.callback is not None else _print_response
    try:
        callback(response)
    except Exception:
        target = session.logger
        if hasattr(target, "trace"):
            target.trace()
        else:
            _log(f"the callback of REQID {response.meta['req_id']} raised "
                 f"{traceback.format_exc().strip()}", "error")


def _message_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    return bytes(data) if isinstance(data, bytes | bytearray) else b""


def _print_response(response: AquestsResponse) -> None:
    """aquests' default callback: one line per response."""
    req_id = response.meta["req_id"]
    # The reason and messages may carry the server's words: no raw control characters
    # (terminal escapes) reach the screen.
    reason = printable(response.reason)
    if response.error is not None:
        _log(f"REQID {req_id}. {response.status_code} {reason}: "
             f"{printable(response.error.message)}")
        return
    if response.version is None and response.opcode is None:  # a database answer
        _log(f"REQID {req_id}. {response.meta['req_method']} {response.method} "
             f"{response.status_code} {reason}")
        return
    size = len(response._body) if response.opcode is None else \
        len(_message_bytes(response.data))
    _log(f"REQID {req_id}. HTTP/{response.version} {response.status_code} {reason} "
         f"{size} bytes received")

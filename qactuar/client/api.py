"""The async interface: `Client`, for code that runs in an event loop.

`Client.request` builds the request (URL, header fields, body), then runs the
loop that makes one exchange at a time through the pools: redirects, the auth
round trip, retries and the cookie jar each get a turn only when configured or
when the answer calls for them, so a plain GET pays for none of them.  The
wire is the connections' business (`http1.py`, `http2.py`), the choice of a
connection the pools' (`pool.py`).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import AsyncIterable, Coroutine
from time import perf_counter
from typing import Any
from urllib.parse import urlencode

from qactuar.client import redirects, retries
from qactuar.client.auth import Auth, auth_from
from qactuar.client.cookies import CookieJar
from qactuar.client.errors import (
    ClientClosed,
    ClientError,
    RedirectError,
    TotalTimeout,
    UnexpectedError,
)
from qactuar.client.exchange import Exchange
from qactuar.client.http1 import request_head
from qactuar.client.models import Headers, Request, Response
from qactuar.client.multipart import encode_multipart
from qactuar.client.pool import Pool
from qactuar.client.proxy import Proxy
from qactuar.client.settings import Limits, Timeout
from qactuar.client.tls import client_context
from qactuar.client.urls import URL, Origin, add_params, parse_url

__version__ = "0.1"
USER_AGENT = f"qactuar-client/{__version__}".encode()
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_KEEP = object()  # "the Client's setting" for per-request arguments
DEFAULT_TIMEOUT = Timeout()
DEFAULT_LIMITS = Limits()


class _Settings:
    """What every pool of one Client shares."""

    def __init__(self, timeout: Timeout, limits: Limits, http2: Any, verify: Any, cert: Any,
                 proxy: Proxy | None) -> None:
        self.timeout = timeout
        self.limits = limits
        self.http2 = http2
        self.verify = verify
        self.cert = cert
        self.proxy = proxy
        self._tls: Any = None
        self.heads: dict[Any, bytes] = {}  # encoded heads of requests with default fields
        self.blocks: dict[Any, bytes] = {}  # HTTP/2 header blocks of the same

    def tls_context(self) -> Any:
        if self._tls is None:
            self._tls = client_context(self.verify, self.cert, bool(self.http2))
        return self._tls


class OutgoingRequest(Request):
    """A Request plus what the engine needs to send it again (redirects, auth, retries)."""

    __slots__ = ("block", "body_stream", "cache_key", "fields", "head", "parsed", "pool")

    def __init__(self, method: str, parsed: URL, fields: list[tuple[bytes, bytes]],
                 content: bytes | None, body_stream: AsyncIterable[bytes] | None,
                 cache_key: tuple[str, str] | None = None) -> None:
        # cache_key: set when the fields are the Client's defaults, so the encoded head
        # (HTTP/1.1) or header block (HTTP/2) of an identical request can be reused.
        self.cache_key = cache_key
        self.head: bytes | None = None  # its HTTP/1.1 head once sent, when cache_key is set
        self.block: bytes | None = None  # its HTTP/2 header block, the same
        # The pool it was sent through when cache_key is set (with `head` over HTTP/1.1).
        self.pool: Pool | None = None
        self.method = method
        self.parsed = parsed
        self.url = parsed.url
        self.fields = fields
        self.content = content
        self.body_stream = body_stream

    @property  # type: ignore[override]
    def headers(self) -> Headers:
        return Headers.from_raw([(b"host", self.parsed.authority.encode()), *self.fields])

    @headers.setter
    def headers(self, value: Any) -> None:
        raise AttributeError("build a new request to change its header fields")

    @property
    def replayable(self) -> bool:
        return self.body_stream is None

    def with_field(self, name: bytes, value: bytes | None) -> OutgoingRequest:
        """A copy with the field `name` (lower case) set to `value`, or removed (None)."""
        fields = [field for field in self.fields if field[0].lower() != name]
        if value is not None:
            fields.append((name, value))
        return OutgoingRequest(self.method, self.parsed, fields, self.content, self.body_stream)


class Client:
    """An HTTP/1.1 and HTTP/2 client with connection pools; use `async with Client() as c`."""

    def __init__(self, *, timeout: Timeout | float | None = DEFAULT_TIMEOUT,
                 limits: Limits = DEFAULT_LIMITS, http2: bool | str = True, verify: Any = True,
                 cert: Any = None, follow_redirects: bool = True, max_redirects: int = 10,
                 cookies: bool = True, retries: int = 0, proxy: str | None = None,
                 headers: Any = None, auth: Any = None) -> None:
        if http2 not in (True, False, "prior-knowledge"):
            raise ValueError("http2 must be True, False or 'prior-knowledge'")
        self._timeout = Timeout.of(timeout)
        self._settings = _Settings(self._timeout, limits, http2, verify, cert,
                                   Proxy.parse(proxy) if proxy else None)
        if verify is not True or cert is not None:
            self._settings.tls_context()  # bad paths fail here, not on the first request
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.cookies: CookieJar | None = CookieJar() if cookies else None
        self.retries = retries
        self.auth: Auth | None = auth_from(auth)
        fields = {b"user-agent": (b"User-Agent", USER_AGENT), b"accept": (b"Accept", b"*/*"),
                  b"accept-encoding": (b"Accept-Encoding", b"gzip, deflate")}
        for name, value in Headers(headers).raw:
            fields[name.lower()] = (name, value)
        self._fields = list(fields.values())
        self._field_names = frozenset(fields)
        self._pools: dict[Origin, Pool] = {}
        self._plain_requests: dict[tuple[str, str], OutgoingRequest] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._backends: Any = None  # RPC and database pools (backends/stubs.py), on first use

    # -- lifetime -----------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; requests still in flight fail with ShutdownError (712)."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._backends is not None:
            await self._backends.aclose()
        await asyncio.sleep(0)  # let the transports run their close callbacks

    @property
    def is_closed(self) -> bool:
        return self._closed

    # -- the verbs (each returns the request's coroutine: one frame less per request) ----
    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.get(url, ...)`: see `request` for the keyword arguments."""
        if kwargs:
            return self.request("GET", url, **kwargs)
        return self._request("GET", url)

    def head(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.head(url, ...)`: see `request` for the keyword arguments."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.options(url, ...)`: see `request` for the keyword arguments."""
        return self.request("OPTIONS", url, **kwargs)

    def trace(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.trace(url, ...)`: see `request` for the keyword arguments."""
        return self.request("TRACE", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.delete(url, ...)`: see `request` for the keyword arguments."""
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.post(url, ...)`: see `request` for the keyword arguments."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.put(url, ...)`: see `request` for the keyword arguments."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        """`await client.patch(url, ...)`: see `request` for the keyword arguments."""
        return self.request("PATCH", url, **kwargs)

    def request(self, method: str, url: str, *, params: Any = None, headers: Any = None,
                content: Any = None, data: Any = None, json: Any = None, files: Any = None,
                auth: Any = _KEEP, timeout: Any = _KEEP,
                follow_redirects: bool | None = None) -> Coroutine[Any, Any, Response]:
        """`await client.request(method, url, ...)`: send one request, return its whole
        response (body read).

        params: query parameters (a mapping or pairs) added to the URL.
        headers: header fields (a mapping or pairs), over the Client's.
        content: the body: bytes, str, or an async iterable of bytes (streamed).
        data: a form (a mapping, urlencoded) or bytes/str; with `files`, multipart fields.
        json: a value sent as JSON.  files: multipart files, see docs/client.md.
        auth, timeout, follow_redirects: this request's own, instead of the Client's.
        """
        return self._request(method, url, (params, headers, content, data, json, files, auth,
                                           timeout, follow_redirects))

    def stream(self, method: str, url: str, *, params: Any = None, headers: Any = None,
               content: Any = None, data: Any = None, json: Any = None, files: Any = None,
               auth: Any = _KEEP, timeout: Any = _KEEP,
               follow_redirects: bool | None = None) -> _StreamedResponse:
        """`async with client.stream(method, url, ...) as response`: the body is read as it
        arrives.  The keyword arguments are request()'s (an unknown one is a TypeError)."""
        return _StreamedResponse(self, method, url, (params, headers, content, data, json,
                                                     files, auth, timeout, follow_redirects))

    # -- RPC and database calls (qactuar/client/backends/; drivers are optional extras) --
    def rpc(self, url: str, headers: Any = None, auth: Any = None) -> Any:
        """An XML-RPC stub: `await client.rpc(url).method(*params)` is the result (a Fault
        raises)."""
        from qactuar.client.backends.rpc import AsyncRPCStub

        return AsyncRPCStub(self, url, "xmlrpc", headers, auth)

    def jsonrpc(self, url: str, headers: Any = None, auth: Any = None) -> Any:
        """A JSON-RPC 2.0 stub: `await client.jsonrpc(url).method(*params)`."""
        from qactuar.client.backends.rpc import AsyncRPCStub

        return AsyncRPCStub(self, url, "jsonrpc", headers, auth)

    def grpc(self, url: str, headers: Any = None, auth: Any = None) -> Any:
        """A gRPC stub for `http(s)://host:port/package.Service` over HTTP/2."""
        return self._backend_calls().stub("grpc", url, None, auth, headers)

    def postgresql(self, server: str, dbname: str | None = None, auth: Any = None) -> Any:
        """A PostgreSQL stub (asyncpg): `await db.execute(sql, *args)` is the rows as dicts."""
        return self._backend_calls().stub("postgresql", server, dbname, auth)

    def redis(self, server: str, dbname: Any = None, auth: Any = None) -> Any:
        """A Redis stub (redis-py asyncio): `await r.get(key)`, every command a method."""
        return self._backend_calls().stub("redis", server, dbname, auth)

    def mongodb(self, server: str, dbname: str | None = None, auth: Any = None) -> Any:
        """A MongoDB stub (PyMongo's AsyncMongoClient) with aquests' method names."""
        return self._backend_calls().stub("mongodb", server, dbname, auth)

    def sqlite3(self, path: str) -> Any:
        """A SQLite stub (aiosqlite): `await db.execute(sql, *args)` off the event loop."""
        return self._backend_calls().stub("sqlite3", path)

    def _backend_calls(self) -> Any:
        if self._closed:
            raise ClientClosed("the Client is closed")
        if self._backends is None:
            from qactuar.client.backends.stubs import ClientBackends

            timeouts = self._timeout
            seconds = timeouts.total or timeouts.read or 30.0
            limit = self._settings.limits.max_connections_per_origin
            self._backends = ClientBackends(seconds, self._settings.verify,
                                            self._settings.cert, limit)
        return self._backends

    # -- the request loop ---------------------------------------------------------------
    async def _request(self, method: str, url: str, options: tuple[Any, ...] | None = None,
                       streaming: bool = False) -> Response:
        """`options`: request()'s keyword arguments in its order, or None when all are
        left out (the plain `get(url)`: one test instead of nine)."""
        if self._closed:
            raise ClientClosed("the Client is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if options is None:
            # A request of the Client's defaults: built once per method and URL.
            request = self._plain_requests.get((method, url))
            if request is None:
                request = self._plain_request(method, url)
            timeouts = self._timeout
            auth_object = self.auth
            follow = self.follow_redirects
        else:
            (params, headers, content, data, json, files, auth, timeout,
             follow_redirects) = options
            if (params is None and headers is None and content is None and data is None
                    and json is None and files is None):
                request = self._plain_requests.get((method, url))
                if request is None:
                    request = self._plain_request(method, url)
            else:
                request = self.build_request(method, url, params, headers, content, data,
                                             json, files)
            timeouts = self._timeout if timeout is _KEEP else Timeout.of(timeout)
            auth_object = self.auth if auth is _KEEP else auth_from(auth)
            follow = self.follow_redirects if follow_redirects is None else follow_redirects
        if timeouts.total is None:
            jar = self.cookies
            # (The jar's dict is looked at directly: CookieJar.__bool__ is a Python call.)
            if auth_object is None and not self.retries and (jar is None or not jar._cookies):
                # The common case: one exchange, then a look at whether it needs more.
                # When a kept-alive HTTP/1.1 connection is free, the request goes out
                # here and its future is awaited in this frame (no coroutine between).
                exchange = self._send_now(request, timeouts, streaming)
                if exchange is None:
                    response = await self._send_single(request, timeouts, streaming)
                else:
                    try:
                        response = await exchange.future
                    except ClientError as error:
                        if not (error.reused and request.replayable):
                            raise
                        # A stale keep-alive, never processed: the usual attempts follow.
                        response = await self._send_single(request, timeouts, streaming, 1)
                    except (asyncio.CancelledError, Exception) as error:
                        exchange.connection.forget(exchange)
                        if isinstance(error, asyncio.CancelledError):
                            raise
                        raise UnexpectedError(f"{type(error).__name__}: {error}") from error
                    else:
                        response.elapsed = perf_counter() - exchange.started
                if not (response.has_cookies or (
                        follow and response.status_code in redirects.REDIRECT_STATUSES)):
                    return response
                return await self._send_handling(request, timeouts, None, follow, streaming,
                                                 response)
            return await self._send_handling(request, timeouts, auth_object, follow, streaming)
        try:
            async with asyncio.timeout(timeouts.total):
                return await self._send_handling(request, timeouts, auth_object, follow,
                                                 streaming)
        except TimeoutError:
            raise TotalTimeout(f"{method} {request.url} took more than {timeouts.total}s "
                               "in all") from None

    def _plain_request(self, method: str, url: str) -> OutgoingRequest:
        """A request of the Client's defaults, built and kept for the next identical one."""
        request = self.build_request(method, url)
        plain = self._plain_requests
        if len(plain) >= 1024:
            plain.clear()
        plain[method, url] = request
        return request

    def build_request(self, method: str, url: str, params: Any = None, headers: Any = None,
                      content: Any = None, data: Any = None, json: Any = None,
                      files: Any = None) -> OutgoingRequest:
        """The request `request()` would send (URL checked, fields and body encoded)."""
        method = method.upper()
        if params:
            url = add_params(url, params)
        parsed = parse_url(url)
        fields = self._fields
        if headers:
            fields = self._merge_fields(headers)
        body: bytes | None = None
        body_stream = None
        content_type = None
        if content is not None:
            if isinstance(content, bytes):
                body = content
            elif isinstance(content, str):
                body = content.encode()
            elif isinstance(content, bytearray | memoryview):
                body = bytes(content)
            elif hasattr(content, "__aiter__"):
                body_stream = content
            else:
                raise TypeError("content must be bytes, str or an async iterable of bytes")
        elif files is not None:
            content_type, body, body_stream = encode_multipart(data, files)
        elif json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            content_type = b"application/json"
        elif data is not None:
            if isinstance(data, bytes | str):
                body = data.encode() if isinstance(data, str) else data
            else:
                body = urlencode(data, doseq=True).encode()
                content_type = b"application/x-www-form-urlencoded"
        if body is not None or body_stream is not None or method in _BODY_METHODS:
            fields = list(fields)
            if content_type is not None and not self._has_field(fields, b"content-type"):
                fields.append((b"Content-Type", content_type))
            if body_stream is None:
                body = body or b""
                fields.append((b"Content-Length", b"%d" % len(body)))
            elif content is None and files is not None:
                length = getattr(body_stream, "length", None)
                if length is not None:
                    fields.append((b"Content-Length", b"%d" % length))
        cache_key = (method, parsed.url) if fields is self._fields else None
        return OutgoingRequest(method, parsed, fields, body, body_stream, cache_key)

    def _merge_fields(self, headers: Any) -> list[tuple[bytes, bytes]]:
        extra = Headers(headers).raw
        names = {name.lower() for name, _ in extra}
        if names.isdisjoint(self._field_names):
            return self._fields + extra
        return [field for field in self._fields if field[0].lower() not in names] + extra

    @staticmethod
    def _has_field(fields: list[tuple[bytes, bytes]], name: bytes) -> bool:
        return any(field[0].lower() == name for field in fields)

    async def _send_handling(self, request: OutgoingRequest, timeouts: Timeout,
                             auth: Auth | None, follow: bool, streaming: bool,
                             first: Response | None = None) -> Response:
        """Exchanges until one is the answer: cookies, auth, retries, redirects.
        `first`: the response to `request` when it has already been received."""
        history: list[Response] = []
        attempt = 0
        auth_tried = False
        if auth is not None:
            request = auth.prepare(request)
        jar = self.cookies
        while True:
            if jar is not None and jar and first is None:
                request = jar.add_cookie_field(request)
            try:
                if first is not None:
                    response, first = first, None
                else:
                    response = await self._send_single(request, timeouts, streaming)
            except ClientError as error:
                if attempt < self.retries and retries.may_retry_error(request, error):
                    attempt += 1
                    await asyncio.sleep(retries.backoff(attempt))
                    continue
                raise
            if jar is not None and response.has_cookies:
                jar.extract(response)
            status = response.status_code
            if status == 401 and auth is not None and not auth_tried:
                again = auth.answer(request, response)
                if again is not None:
                    auth_tried = True
                    await _discard_body(response)
                    request = again
                    continue
            if self.retries and attempt < self.retries and status in retries.RETRY_STATUSES:
                wait = retries.wait_for(request, response, attempt + 1)
                if wait is not None:
                    attempt += 1
                    await _discard_body(response)
                    await asyncio.sleep(wait)
                    continue
            if follow and status in redirects.REDIRECT_STATUSES:
                following = redirects.next_request(self, request, response)
                if following is not None:
                    if len(history) >= self.max_redirects:
                        await _discard_body(response)
                        raise RedirectError(f"more than {self.max_redirects} redirects "
                                            f"from {history[0].url}")
                    await _discard_body(response)
                    history.append(response)
                    if auth is not None and following.parsed.origin == request.parsed.origin:
                        following = auth.prepare(following)
                    request = following
                    auth_tried = False
                    continue
            if history:
                response.history = history
            return response

    def _send_now(self, request: OutgoingRequest, timeouts: Timeout,
                  streaming: bool) -> Exchange | None:
        """Send `request` at once when a connection of its pool has a free slot and the
        request has been sent before (the plain GET of a loop: its HTTP/1.1 head or
        HTTP/2 header block is cached): the Exchange, with its connection and start time
        noted, whose future the caller awaits.  None when that does not apply (no slot
        free, a body or fields of its own): `_send_single` does it then."""
        pool = request.pool  # set once sent by _send_single: default fields, no stream
        if pool is None:
            return None
        connections = pool.connections  # (a Client's pools live as long as it)
        if connections and connections[-1].free > 0:
            connection = connections[-1]  # Pool.take's first look, without the call
            connection.free -= 1
        else:
            connection = pool.take()
            if connection is None:
                return None
        is_http2 = connection.is_http2
        if connection.absolute_form or not (is_http2 or request.head is not None):
            connection.free += 1  # give the slot back: _send_single takes it again
            return None
        response = Response()
        response.request = request
        response.url = request.url
        exchange = Exchange(response, self._loop.create_future(),  # type: ignore[union-attr]
                            request.method == "HEAD", timeouts.read, streaming)
        exchange.connection = connection
        exchange.started = perf_counter()
        if is_http2:
            response.http_version = "HTTP/2"
            connection.send(exchange, request, timeouts.write)
        else:
            connection.send(exchange, request.head, request.content)
        return exchange

    async def _send_single(self, request: OutgoingRequest, timeouts: Timeout,
                           streaming: bool, first_attempt: int = 0) -> Response:
        """One exchange on a pooled connection; once more on a new one when a kept-alive
        connection turns out closed before it answered (up to three attempts in all,
        `first_attempt` of them already made)."""
        parsed = request.parsed
        pool = self._pools.get(parsed.origin)
        if pool is None:
            pool = self._pools[parsed.origin] = Pool(self._settings, parsed.origin, self._loop)
        for attempt in range(first_attempt, 3):
            connection = pool.take() or await pool.acquire(timeouts.pool)
            response = Response()
            response.request = request
            response.url = request.url
            loop = self._loop
            future = loop.create_future()
            exchange = Exchange(response, future, request.method == "HEAD", timeouts.read,
                                streaming)
            started = perf_counter()  # the loop's clock counts milliseconds: too coarse here
            try:
                if connection.is_http2:
                    response.http_version = "HTTP/2"
                    if request.body_stream is None:
                        if request.cache_key is not None:
                            request.pool = pool  # the next identical one: see _send_now
                        connection.send(exchange, request, timeouts.write)
                    else:
                        await connection.send_streamed(exchange, request, timeouts.write)
                else:
                    target = parsed.url if connection.absolute_form else parsed.target
                    if request.body_stream is None:
                        key = request.cache_key
                        if key is None:
                            head = request_head(request.method, target, parsed.authority,
                                                request.fields)
                        else:
                            heads = self._settings.heads
                            head = heads.get(key)
                            if head is None:
                                head = request_head(request.method, target, parsed.authority,
                                                    request.fields)
                                if len(heads) >= 1024:
                                    heads.clear()
                                heads[key] = head
                            request.head = head
                            request.pool = pool
                        connection.send(exchange, head, request.content)
                    else:
                        fields = request.fields
                        chunked = not self._has_field(fields, b"content-length")
                        if chunked:
                            fields = [*fields, (b"Transfer-Encoding", b"chunked")]
                        head = request_head(request.method, target, parsed.authority, fields)
                        await connection.send_streamed(exchange, head, request.body_stream,
                                                       chunked, timeouts.write)
                response = await future
            except ClientError as error:
                if error.reused and request.replayable and attempt < 2:
                    continue  # never processed: a stale keep-alive, REFUSED_STREAM, GOAWAY
                raise
            except (asyncio.CancelledError, Exception) as error:
                connection.forget(exchange)
                if isinstance(error, asyncio.CancelledError):
                    raise
                raise UnexpectedError(f"{type(error).__name__}: {error}") from error
            response.elapsed = perf_counter() - started
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")


async def _discard_body(response: Response) -> None:
    """Read and drop the rest of a streamed response we will not return."""
    if response._stream is not None:
        await response.aread()


class _StreamedResponse:
    """The async context manager `Client.stream()` returns."""

    def __init__(self, client: Client, method: str, url: str,
                 options: tuple[Any, ...]) -> None:
        self.client = client
        self.method = method
        self.url = url
        self.options = options  # request()'s keyword arguments, in its order
        self.response: Response | None = None

    async def __aenter__(self) -> Response:
        self.response = await self.client._request(self.method, self.url, self.options, True)
        return self.response

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.response is not None:
            await self.response.aclose()

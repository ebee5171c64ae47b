"""What every RPC and database backend shares: the call, its outcome, the pools per
server, the failures, and the error for a missing optional extra.

A `BackendCall` is one call as the aquests scheduler queues it (kind, server,
method, arguments, and the coroutine function that runs it); `run_call()` runs it
within a deadline and turns whatever went wrong into one of two families:

- the client's `ClientError` classes (7xx) when the server could not be reached or
  the connection failed: refused (714), unresolvable (704), timed out (702),
  closed or reset mid-call (700);
- `QueryError` when the server answered with an error (a bad query, wrong
  credentials, a gRPC status): `status_code` is 500 (or the HTTP mapping of the
  gRPC status), `reason` names the driver's error, `message` is its text.

`Pools` holds one pool (or client) per server and credentials, made on first use
and closed together.  No driver is imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from qactuar.client.errors import (
    ClientError,
    ConnectError,
    ConnectionClosed,
    NameResolutionError,
    RequestTimeout,
    UnexpectedError,
)

# The extra that installs each driver (pyproject.toml's optional dependencies).
EXTRAS = {
    "asyncpg": "postgresql",
    "redis": "redis",
    "pymongo": "mongodb",
    "aiosqlite": "sqlite",
    "grpc": "grpc",
    "google.protobuf": "grpc",
}


CLOSE_TIMEOUT = 5.0  # seconds a pool may take to close before it is dropped


class MissingExtra(ImportError):
    """A backend's driver is not installed; the message names the pip install to run."""


def ensure_installed(module: str) -> None:
    """Raise MissingExtra now (where the stub is made) when the driver is not installed;
    looks for the module without importing it."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or sys.modules[module] = None
        found = False
    if not found:
        require(module)  # raises with the message naming the extra


def require(module: str) -> Any:
    """Import a driver, or raise MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS.get(module, module)
        raise MissingExtra(
            f"{module} is not installed: this call needs qactuar's {extra!r} extra: "
            f"pip install 'qactuar[{extra}]'") from error


class QueryError(Exception):
    """The server answered the call with an error (a query error, wrong credentials,
    a gRPC status other than OK).  Not a ClientError: the server was reached."""

    def __init__(self, message: str, *, reason: str, status_code: int = 500,
                 details: Any = None, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status_code = status_code
        self.details = details  # the driver's error object
        self.outcome = outcome  # gRPC: the HTTP answer (header fields, trailers, body)

    def __str__(self) -> str:
        return f"{self.status_code} {self.reason}: {self.message}"


@dataclass
class Outcome:
    """What a call answered: `data` (the result), and for gRPC the HTTP part."""

    data: Any
    status_code: int = 200
    reason: str = "OK"
    version: str | None = None
    body: bytes = b""
    header_pairs: list[tuple[str, str]] = field(default_factory=list)  # trailers included
    trailers: list[tuple[str, str]] = field(default_factory=list)


RunFunction = Callable[["Pools"], Awaitable[Outcome]]


@dataclass
class BackendCall:
    """One RPC or database call: `run(pools)` performs it."""

    kind: str  # "postgresql", "redis", "mongodb", "sqlite3", "grpc"
    server: str  # "host:port", a file path for SQLite, the service URL for gRPC
    dbname: str | None
    method: str  # "execute", "get", "findone", "GetFeature", ...
    params: tuple[Any, ...]
    run: RunFunction
    # A function turning the driver's exception into a ClientError or QueryError
    # (None when only the generic OS errors apply).
    classify: Callable[[BaseException], Exception | None] | None = None

    @property
    def url(self) -> str:
        if self.kind == "grpc":
            return f"{self.server}/{self.method}"
        return f"{self.kind}://{self.server}" + (f"/{self.dbname}" if self.dbname else "")


class Pools:
    """One pool (or driver client) per key, made on first use; `aclose()` closes all.

    Also holds what outlives one call (MongoDB cursors kept alive by findkc()).
    `limit` is the most connections a pool may open (the aquests workers)."""

    def __init__(self, limit: int = 10, timeout: float = 10.0, verify: Any = True,
                 cert: Any = None) -> None:
        self.limit = limit
        self.timeout = timeout  # seconds: each call's deadline (drivers' own waits follow it)
        self.verify = verify
        self.cert = cert
        self._pools: dict[Any, Any] = {}
        self._closers: dict[Any, Callable[[Any], Awaitable[None]]] = {}
        self._making: dict[Any, asyncio.Future[Any]] = {}
        # MongoDB: cursor id -> (the session that opened it, its collection)
        self.cursor_sessions: dict[int, tuple[Any, str]] = {}

    async def get(self, key: Any, make: Callable[[], Awaitable[Any]],
                  close: Callable[[Any], Awaitable[None]]) -> Any:
        """The pool for `key`; `make()` creates it once even when many calls ask at once."""
        while True:
            pool = self._pools.get(key)
            if pool is not None:
                return pool
            pending = self._making.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this call was cancelled
                # The call making it ran out of time: this one makes it now.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            pool = await make()
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):  # this call's deadline, not theirs
                future.cancel()
            else:
                future.set_exception(error)
                future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._making[key]
        self._pools[key] = pool
        self._closers[key] = close
        future.set_result(pool)
        return pool

    async def discard(self, key: Any) -> None:
        """Close and forget the pool for `key` (the next call makes a new one)."""
        pool = self._pools.pop(key, None)
        close = self._closers.pop(key, None)
        if pool is not None and close is not None:
            # A broken pool may fail to close, or wait on a server that is gone: bounded.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await close(pool)

    async def aclose(self) -> None:
        for session, _ in self.cursor_sessions.values():
            with contextlib.suppress(Exception):  # the server may be gone already
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await session.end_session()
        self.cursor_sessions.clear()
        for key in list(self._pools):
            await self.discard(key)


def os_failure(error: BaseException, where: str) -> ClientError | None:
    """The 7xx failure of an operating-system or timeout error, or None."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return RequestTimeout(f"{where}: no answer in time")
    if isinstance(error, socket.gaierror):
        return NameResolutionError(f"{where}: {error}")
    if isinstance(error, ConnectionRefusedError):
        return ConnectError(f"{where}: connection refused")
    if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError |
                  EOFError | asyncio.IncompleteReadError):
        return ConnectionClosed(f"{where}: the connection was closed: {error}")
    if isinstance(error, OSError):
        return ConnectError(f"{where}: {error}")
    return None


async def run_call(call: BackendCall, pools: Pools, timeout: float | None) -> Outcome:
    """Run one call within `timeout` seconds; failures raise ClientError or QueryError."""
    try:
        if timeout is None:
            return await call.run(pools)
        async with asyncio.timeout(timeout):
            return await call.run(pools)
    except (ClientError, QueryError, MissingExtra):
        raise
    except TimeoutError:
        raise RequestTimeout(f"{call.url} {call.method}: no answer within {timeout}s") \
            from None
    except Exception as error:
        failure = call.classify(error) if call.classify is not None else None
        if failure is None:
            failure = os_failure(error, f"{call.url} {call.method}")
        if failure is None:
            failure = UnexpectedError(f"{call.url} {call.method}: "
                                      f"{type(error).__name__}: {error}")
        raise failure from error


def host_port(server: str, default_port: int) -> tuple[str, int]:
    """'host:port' (or '[v6]:port', or 'host') as (host, port)."""
    if not isinstance(server, str) or not server:
        raise ValueError(f"the server is 'host:port', not {server!r}")
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "")
    if not port:
        return host, default_port
    if not port.isdigit():
        raise ValueError(f"the server is 'host:port', not {server!r}")
    return host, int(port)


def credentials(auth: Any) -> tuple[str | None, str | None]:
    """aquests' auth for a database: None, (user, password), (user,) or 'user:password'."""
    if auth is None:
        return None, None
    if isinstance(auth, str):
        user, sep, password = auth.partition(":")
        return user, (password if sep else None)
    if isinstance(auth, tuple | list) and 1 <= len(auth) <= 2:
        return str(auth[0]), (str(auth[1]) if len(auth) == 2 else None)
    raise TypeError("auth is (user, password), (user,) or 'user:password'")

"""The stubs both interfaces hand out: `postgresql()`, `redis()`, `mongodb()`,
`sqlite3()` and `grpc()` objects whose method calls become BackendCalls.

A stub only builds calls; what happens to one is its `submit` function's
business: the aquests interface queues it (the method returns None), the async
interface runs it and returns the awaitable of its result.  Making a stub checks
that its driver is installed (MissingExtra naming the pip install, at once, not
inside fetchall()); the driver itself is imported by the first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qactuar.client.backends.base import BackendCall, Pools, ensure_installed, run_call

KINDS = ("postgresql", "redis", "mongodb", "sqlite3", "grpc")
DRIVERS = {"postgresql": ("asyncpg",), "redis": ("redis",), "mongodb": ("pymongo",),
           "sqlite3": ("aiosqlite",), "grpc": ("google.protobuf",)}


def make_call(kind: str, server: str, dbname: Any, auth: Any, method: str,
              params: tuple[Any, ...], kwargs: dict[str, Any],
              headers: Any = None) -> BackendCall:
    """The BackendCall of `stub.<method>(*params, **kwargs)` on a stub of `kind`."""
    if kind == "postgresql":
        from qactuar.client.backends import postgresql

        _no_keywords(method, kwargs)
        return postgresql.call(server, dbname, auth, method, params)
    if kind == "redis":
        from qactuar.client.backends import redis

        _no_keywords(method, kwargs)
        return redis.call(server, dbname, auth, method, params)
    if kind == "mongodb":
        from qactuar.client.backends import mongodb

        return mongodb.call(server, dbname, auth, method, params, kwargs)
    if kind == "sqlite3":
        from qactuar.client.backends import sqlite

        _no_keywords(method, kwargs)
        return sqlite.call(server, method, params)
    if kind == "grpc":
        from qactuar.client.backends import grpc

        _no_keywords(method, kwargs)
        return grpc.call(server, method, params, headers, auth)
    raise ValueError(f"unknown backend {kind!r}")


def _no_keywords(method: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{method}() takes positional arguments only, not "
                        f"{', '.join(kwargs)}")


class Stub:
    """`stub.<method>(*params)`: one call, handed to `submit`."""

    def __init__(self, kind: str, server: str, dbname: Any, auth: Any,
                 submit: Callable[[BackendCall], Any], headers: Any = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown backend {kind!r}")
        for module in DRIVERS[kind]:
            ensure_installed(module)
        if kind == "grpc":
            from qactuar.client.backends.grpc import split_url

            split_url(server)  # a bad URL fails here, where the stub is made
        elif kind != "sqlite3":
            from qactuar.client.backends.base import host_port

            host_port(server, 0)
        self._kind = kind
        self._server = server
        self._dbname = dbname
        self._auth = auth
        self._submit = submit
        self._headers = headers

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def send(*params: Any, **kwargs: Any) -> Any:
            return self._submit(make_call(self._kind, self._server, self._dbname, self._auth,
                                          method, params, kwargs, self._headers))

        send.__name__ = method
        return send

    def __repr__(self) -> str:
        return f"<{self._kind} stub {self._server}>"


class ClientBackends:
    """A Client's pools for its RPC and database calls (closed with the Client)."""

    def __init__(self, timeout: float, verify: Any, cert: Any, limit: int) -> None:
        self.pools = Pools(limit=limit, timeout=timeout, verify=verify, cert=cert)

    def stub(self, kind: str, server: str, dbname: Any = None, auth: Any = None,
             headers: Any = None) -> Stub:
        return Stub(kind, server, dbname, auth, self._run, headers)

    async def _run(self, call: BackendCall) -> Any:
        outcome = await run_call(call, self.pools, self.pools.timeout)
        return outcome.data

    async def aclose(self) -> None:
        await self.pools.aclose()

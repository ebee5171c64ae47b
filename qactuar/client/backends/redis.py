"""Redis calls through redis-py's asyncio client: every Redis command is a method
(`dbo.get(key)`, `dbo.lrange(key, 0, 3)`, `dbo.client_list()` for CLIENT LIST).

One `redis.asyncio.Redis` (with its connection pool) per server, database number
and user.  Answers are decoded as UTF-8 text, as aquests printed them.  redis-py
checks a pooled connection before use and reconnects one the server closed (a
restart); a command is not retried, so a connection dropped mid-command fails
that call (700).  Failures: error replies and wrong credentials are QueryError
(500), a refused or dropped connection the 7xx codes.
"""

from __future__ import annotations

import sys
from typing import Any

from qactuar.client.backends.base import (
    BackendCall,
    Outcome,
    Pools,
    QueryError,
    credentials,
    host_port,
    require,
)
from qactuar.client.errors import ConnectError, ConnectionClosed, RequestTimeout


def call(server: str, dbname: Any, auth: Any, method: str,
         params: tuple[Any, ...]) -> BackendCall:
    """The call of `redis(server, dbname, auth).<command>(*args)`."""
    host, port = host_port(server, 6379)
    user, password = credentials(auth)
    if user is not None and password is None:  # (password,): Redis' AUTH without a user
        user, password = None, user
    try:
        database = int(dbname or 0)
    except ValueError:
        raise ValueError(f"redis(): dbname is a database number, not {dbname!r}") from None
    command = method.replace("_", " ").upper()

    async def run(pools: Pools) -> Outcome:
        require("redis")
        import redis.asyncio as redis_asyncio

        key = ("redis", host, port, database, user, password)

        async def make() -> Any:
            return redis_asyncio.Redis(host=host, port=port, db=database, username=user,
                                       password=password, decode_responses=True,
                                       retry=_no_retry())

        client = await pools.get(key, make, _close)
        return Outcome(await client.execute_command(command, *params))

    return BackendCall("redis", server, str(database), method, params, run, classify)


def _no_retry() -> Any:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


async def _close(client: Any) -> None:
    await client.aclose()


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
        seen += 1
    return False


def classify(error: BaseException) -> Exception | None:
    redis = sys.modules.get("redis")
    if redis is None:
        return None
    exceptions = redis.exceptions
    if isinstance(error, exceptions.AuthenticationError | exceptions.ResponseError
                  | exceptions.DataError):
        return QueryError(str(error), reason=type(error).__name__, details=error)
    if isinstance(error, exceptions.TimeoutError):
        return RequestTimeout(f"Redis: {error}")
    if isinstance(error, exceptions.ConnectionError):
        if _caused_by(error, ConnectionRefusedError) or "connecting to" in str(error):
            return ConnectError(f"Redis: {error}")
        return ConnectionClosed(f"Redis: {error}")
    if isinstance(error, exceptions.RedisError):
        return QueryError(str(error), reason=type(error).__name__, details=error)
    return None

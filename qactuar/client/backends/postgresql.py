"""PostgreSQL calls through asyncpg: `execute(sql, *args)` (alias `do`) answers the rows
as dicts.

One asyncpg pool per server, database and user, opened lazily (no connection
until the first call, so a wrong password fails that call, not the stub) and
holding at most the session's `workers` connections.  A statement with several
commands (a script) runs through the simple query protocol and answers `[]`.
asyncpg notices a connection the server closed (a restart) and the pool opens a
new one on the next acquire.  Failures: the server's errors are QueryError (500,
the SQLSTATE class named), a refused or dropped connection the 7xx codes.
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
from qactuar.client.errors import ConnectError, ConnectionClosed

METHODS = ("execute", "do")


def call(server: str, dbname: str | None, auth: Any, method: str,
         params: tuple[Any, ...]) -> BackendCall:
    """The call of `postgresql(server, dbname, auth).execute(sql, *args)`."""
    if method not in METHODS:
        raise AttributeError(f"postgresql stubs have execute(sql) and do(sql), not {method}()")
    if not params or not isinstance(params[0], str):
        raise TypeError(f"{method}(sql, *args): the SQL is a str")
    host, port = host_port(server, 5432)
    user, password = credentials(auth)
    sql, args = params[0], params[1:]

    async def run(pools: Pools) -> Outcome:
        asyncpg = require("asyncpg")
        key = ("postgresql", host, port, dbname, user, password)

        async def make() -> Any:
            return await asyncpg.create_pool(host=host, port=port, user=user,
                                             password=password, database=dbname,
                                             min_size=0, max_size=pools.limit)

        pool = await pools.get(key, make, _close)
        async with pool.acquire() as connection:
            try:
                records = await connection.fetch(sql, *args)
            except asyncpg.PostgresSyntaxError as error:
                # A script ("drop ...; create ...; insert ..."): the extended protocol
                # takes one command; the simple one runs them all and answers no rows.
                if args or "multiple commands" not in str(error):
                    raise
                await connection.execute(sql)
                records = []
            except asyncpg.InternalClientError as error:
                # On an open connection this is asyncpg's protocol meeting a message out
                # of turn: the server's FATAL error when it ends the session between the
                # statement's prepare and its execution. Its protocol is out of step, so
                # it is closed here rather than handed back to the pool to reset.
                connection.terminate()
                raise ConnectionClosed(f"PostgreSQL: the connection broke mid-call: "
                                       f"{error}") from error
        return Outcome([dict(record) for record in records])

    return BackendCall("postgresql", server, dbname, method, params, run, classify)


async def _close(pool: Any) -> None:
    pool.terminate()  # every call has ended: nothing to wait for, and the server may be gone


def classify(error: BaseException) -> Exception | None:
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return None
    exceptions = asyncpg.exceptions
    if isinstance(error, exceptions.ConnectionDoesNotExistError):
        return ConnectionClosed(f"PostgreSQL: {error}")
    if isinstance(error, exceptions.AdminShutdownError | exceptions.CrashShutdownError):
        # The server ended this connection (a restart, pg_terminate_backend): mid-call.
        return ConnectionClosed(f"PostgreSQL: {error}")
    if isinstance(error, exceptions.CannotConnectNowError | exceptions.PostgresConnectionError):
        return ConnectError(f"PostgreSQL: {error}")
    if isinstance(error, exceptions.PostgresError):
        return QueryError(str(error), reason=type(error).__name__, details=error)
    return None

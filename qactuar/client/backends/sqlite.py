"""SQLite calls through aiosqlite: `execute(sql, *args)` (alias `do`) answers the rows as
dicts, in aiosqlite's thread so the event loop never waits on the file.

One connection per database file (SQLite serialises writers anyway), in
autocommit mode.  A script of several statements runs with executescript() and
answers `[]`.  SQLite's errors are QueryError (500).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from qactuar.client.backends.base import BackendCall, Outcome, Pools, QueryError, require

METHODS = ("execute", "do")


def call(path: str, method: str, params: tuple[Any, ...]) -> BackendCall:
    """The call of `sqlite3(path).execute(sql, *args)`."""
    if method not in METHODS:
        raise AttributeError(f"sqlite3 stubs have execute(sql) and do(sql), not {method}()")
    if not params or not isinstance(params[0], str):
        raise TypeError(f"{method}(sql, *args): the SQL is a str")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"sqlite3(): the database is a file path, not {path!r}")
    path = os.fspath(path)
    sql, args = params[0], params[1:]

    async def run(pools: Pools) -> Outcome:
        aiosqlite = require("aiosqlite")
        import sqlite3

        key = ("sqlite3", os.path.abspath(path) if path != ":memory:" else path)

        async def make() -> Any:
            connection = await aiosqlite.connect(path, isolation_level=None)
            connection.row_factory = sqlite3.Row
            return connection

        connection = await pools.get(key, make, _close)
        try:
            cursor = await connection.execute(sql, args)
        except sqlite3.ProgrammingError as error:
            if args or "one statement" not in str(error):
                raise
            await connection.executescript(sql)
            return Outcome([])
        try:
            rows = await cursor.fetchall()
        finally:
            await cursor.close()
        return Outcome([dict(row) for row in rows])

    return BackendCall("sqlite3", path, None, method, params, run, classify)


async def _close(connection: Any) -> None:
    await connection.close()


def classify(error: BaseException) -> Exception | None:
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(error, sqlite3.Error):
        return QueryError(str(error), reason=type(error).__name__, details=error)
    return None

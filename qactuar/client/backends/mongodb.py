"""MongoDB calls through PyMongo's AsyncMongoClient, with aquests' method names mapped
onto today's commands, and authentication (which aquests lacked).

| aquests method | today's command |
|---|---|
| find(col, spec, offset=0, limit=1), findone(col, spec), findall(col, spec) | find |
| findkc(col, spec, offset=0, limit=1) | find, cursor kept open |
| get_more(col, cursor_id, num_to_return) | getMore |
| kill_cursors(cursor_ids) | killCursors |
| insert(col, docs, continue_on_error=0) | insert (ordered unless continue_on_error) |
| update / updateone / upsert / upsertone (col, spec, doc) | update (multi / upsert) |
| delete(col, spec, flag=0) | delete (flag 1: one document) |

The find family answers aquests' shape: `{"starting_from", "number_returned",
"cursor_id", "data"}`.  A document without `$` operators given to update/upsert
replaces the matched document (updateone/upsertone) or sets its fields (update,
upsert: several documents).  One AsyncMongoClient per server and user; it
reconnects by itself after a restart.  A cursor kept by findkc() keeps the
session that opened it (getMore must use it) until it is exhausted or killed.
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

METHODS = ("find", "findone", "findall", "findkc", "get_more", "kill_cursors", "insert",
           "update", "updateone", "upsert", "upsertone", "delete")


def call(server: str, dbname: str | None, auth: Any, method: str, params: tuple[Any, ...],
         kwargs: dict[str, Any]) -> BackendCall:
    """The call of `mongodb(server, dbname, auth).<method>(*params, **kwargs)`."""
    if method not in METHODS:
        raise AttributeError(f"mongodb stubs have {', '.join(METHODS)}; not {method}()")
    if not dbname:
        raise ValueError("mongodb(server, dbname): the database name is needed")
    host, port = host_port(server, 27017)
    source = "admin"
    options: dict[str, Any] = {}
    if isinstance(auth, dict):  # PyMongo's own options: username, password, authMechanism...
        options = dict(auth)
        auth = None
    elif isinstance(auth, tuple | list) and len(auth) == 3:  # (user, password, auth db)
        auth, source = tuple(auth[:2]), str(auth[2])
    user, password = credentials(auth)
    operation = getattr(_Operations, method)

    async def run(pools: Pools) -> Outcome:
        pymongo = require("pymongo")
        key = ("mongodb", host, port, user, password, source, tuple(sorted(options.items())))

        async def make() -> Any:
            timeout = pools.timeout
            settings: dict[str, Any] = {
                "directConnection": True,
                # A server that is down fails the call within the call's own deadline.
                "serverSelectionTimeoutMS": max(200, int(min(timeout, 10) * 500)),
                "connectTimeoutMS": max(200, int(timeout * 1000)),
                "maxPoolSize": pools.limit,
            }
            if user is not None:
                settings.update(username=user, password=password, authSource=source)
            settings.update(options)
            return pymongo.AsyncMongoClient(host, port, **settings)

        client = await pools.get(key, make, _close)
        return Outcome(await operation(client[dbname], pools, *params, **kwargs))

    return BackendCall("mongodb", server, dbname, method, params, run, classify)


async def _close(client: Any) -> None:
    await client.close()


def _cursor_id(cursor_id: int) -> Any:
    """A cursor id as the server sent it: MongoDB's are 64-bit (sent back as BSON long);
    a small one (a test server's counter) goes back as the plain int it came as."""
    from bson.int64 import Int64

    cursor_id = int(cursor_id)
    return cursor_id if -2**31 <= cursor_id < 2**31 else Int64(cursor_id)


def _found(offset: int, cursor_id: int, documents: list[Any]) -> dict[str, Any]:
    return {"starting_from": offset, "number_returned": len(documents),
            "cursor_id": cursor_id, "data": documents}


def _is_operators(document: dict[str, Any]) -> bool:
    return bool(document) and all(str(key).startswith("$") for key in document)


class _Operations:
    """One coroutine per aquests method: (database, pools, *params) -> the result."""

    @staticmethod
    async def find(db: Any, pools: Pools, colname: str, spec: dict[str, Any] | None = None,
                   offset: int = 0, limit: int = 1) -> dict[str, Any]:
        cursor = db[colname].find(spec or {}, skip=offset, limit=0 if limit < 0 else limit)
        return _found(offset, 0, await cursor.to_list(None))

    @staticmethod
    async def findone(db: Any, pools: Pools, colname: str,
                      spec: dict[str, Any] | None = None) -> dict[str, Any]:
        return await _Operations.find(db, pools, colname, spec, 0, 1)

    @staticmethod
    async def findall(db: Any, pools: Pools, colname: str,
                      spec: dict[str, Any] | None = None) -> dict[str, Any]:
        return await _Operations.find(db, pools, colname, spec, 0, -1)

    @staticmethod
    async def findkc(db: Any, pools: Pools, colname: str, spec: dict[str, Any] | None = None,
                     offset: int = 0, limit: int = 1) -> dict[str, Any]:
        session = db.client.start_session()
        command = {"find": colname, "filter": spec or {}, "skip": offset,
                   "batchSize": max(limit, 0)}
        try:
            answer = await db.command(command, session=session)
        except BaseException:
            await session.end_session()
            raise
        cursor = answer["cursor"]
        if cursor["id"]:
            pools.cursor_sessions[int(cursor["id"])] = (session, colname)
        else:
            await session.end_session()
        return _found(offset, int(cursor["id"]), list(cursor["firstBatch"]))

    @staticmethod
    async def get_more(db: Any, pools: Pools, colname: str, cursor_id: int,
                       num_to_return: int = 1) -> dict[str, Any]:
        session, _ = pools.cursor_sessions.get(int(cursor_id), (None, None))
        command = {"getMore": _cursor_id(cursor_id), "collection": colname,
                   "batchSize": max(num_to_return, 0)}
        answer = await db.command(command, session=session)
        cursor = answer["cursor"]
        if not cursor["id"] and session is not None:
            del pools.cursor_sessions[int(cursor_id)]
            await session.end_session()
        return _found(-1, int(cursor["id"]), list(cursor["nextBatch"]))

    @staticmethod
    async def kill_cursors(db: Any, pools: Pools, cursor_ids: Any,
                           colname: str | None = None) -> dict[str, Any]:
        ids = [cursor_ids] if isinstance(cursor_ids, int) else list(cursor_ids)
        killed: list[int] = []
        # killCursors names the collection each cursor was opened on (findkc noted it).
        by_collection: dict[str, list[Any]] = {}
        for cursor_id in ids:
            _, name = pools.cursor_sessions.get(int(cursor_id), (None, colname))
            if name is None:
                raise ValueError(f"kill_cursors(): cursor {cursor_id} was not opened by "
                                 "findkc() in this session; name its collection: "
                                 "kill_cursors(cursor_ids, colname)")
            by_collection.setdefault(name, []).append(_cursor_id(cursor_id))
        for name, group in by_collection.items():
            session, _ = pools.cursor_sessions.get(int(group[0]), (None, None))
            answer = await db.command({"killCursors": name, "cursors": group},
                                      session=session)
            killed += [int(i) for i in answer.get("cursorsKilled", [])]
        for cursor_id in ids:
            session, _ = pools.cursor_sessions.pop(int(cursor_id), (None, None))
            if session is not None:
                await session.end_session()
        return {"cursors_killed": killed}

    @staticmethod
    async def insert(db: Any, pools: Pools, colname: str, docs: Any,
                     continue_on_error: int = 0) -> dict[str, Any]:
        documents = [docs] if isinstance(docs, dict) else list(docs)
        result = await db[colname].insert_many(documents, ordered=not continue_on_error)
        return {"n": len(result.inserted_ids), "inserted_ids": list(result.inserted_ids)}

    @staticmethod
    async def _update(db: Any, colname: str, spec: dict[str, Any], doc: dict[str, Any],
                      many: bool, upsert: bool) -> dict[str, Any]:
        collection = db[colname]
        if _is_operators(doc):
            method = collection.update_many if many else collection.update_one
            result = await method(spec, doc, upsert=upsert)
        elif many:
            result = await collection.update_many(spec, {"$set": doc}, upsert=upsert)
        else:
            result = await collection.replace_one(spec, doc, upsert=upsert)
        return {"matched": result.matched_count, "modified": result.modified_count,
                "upserted_id": result.upserted_id}

    @staticmethod
    async def update(db: Any, pools: Pools, colname: str, spec: dict[str, Any],
                     doc: dict[str, Any]) -> dict[str, Any]:
        return await _Operations._update(db, colname, spec, doc, True, False)

    @staticmethod
    async def updateone(db: Any, pools: Pools, colname: str, spec: dict[str, Any],
                        doc: dict[str, Any]) -> dict[str, Any]:
        return await _Operations._update(db, colname, spec, doc, False, False)

    @staticmethod
    async def upsert(db: Any, pools: Pools, colname: str, spec: dict[str, Any],
                     doc: dict[str, Any]) -> dict[str, Any]:
        return await _Operations._update(db, colname, spec, doc, True, True)

    @staticmethod
    async def upsertone(db: Any, pools: Pools, colname: str, spec: dict[str, Any],
                        doc: dict[str, Any]) -> dict[str, Any]:
        return await _Operations._update(db, colname, spec, doc, False, True)

    @staticmethod
    async def delete(db: Any, pools: Pools, colname: str, spec: dict[str, Any] | None = None,
                     flag: int = 0) -> dict[str, Any]:
        collection = db[colname]
        method = collection.delete_one if flag & 1 else collection.delete_many
        result = await method(spec or {})
        return {"n": result.deleted_count}


def classify(error: BaseException) -> Exception | None:
    pymongo = sys.modules.get("pymongo")
    if pymongo is None:
        return None
    errors = pymongo.errors
    if isinstance(error, errors.ServerSelectionTimeoutError):
        return ConnectError(f"MongoDB: {error}")
    if isinstance(error, errors.NetworkTimeout | errors.ExecutionTimeout):
        return RequestTimeout(f"MongoDB: {error}")
    if isinstance(error, errors.ConnectionFailure):  # AutoReconnect: dropped mid-call
        return ConnectionClosed(f"MongoDB: {error}")
    if isinstance(error, errors.PyMongoError):
        return QueryError(str(error), reason=type(error).__name__, details=error)
    return None

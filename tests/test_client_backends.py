"""The client's database requests against real servers: PostgreSQL, Redis, MongoDB
(mongoeco's wire server) and SQLite, through the aquests interface and the async one.

The aquests README's examples are copied from hansroh/aquests' README.rst
(dedented, trailing blanks dropped); `run_example` changes only the import line
(`from qactuar import client as aquests` is run first) and the servers'
addresses (each server here runs on a free port).  Every failure of the issue
(server down, wrong credentials, query error, timeout, connection dropped
mid-call) is checked to stay in its own Response while the other requests of
the same fetchall() succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import qactuar.client.aquests as aquests_module
from backend_servers import (
    MongoServer,
    PostgresServer,
    RedisServer,
    free_port,
    wait_until,
)
from conftest import ServerProcess

pytest.importorskip("asyncpg")
pytest.importorskip("redis")
pytest.importorskip("pymongo")
pytest.importorskip("aiosqlite")

POSTGRESQL = '''
def finish_request (response):
  print (response.data)

aquests.configure (3, callback = finish_request)
dbo = aquests.postgresql ("127.0.0.1:5432", "mydb", ("test", "1111"))
for i in range (10):
  dbo.execute ("SELECT city, prcp, temp_hi, temp_low FROM weather;")
'''

MONGODB = '''
dbo = aquests.mongodb ("127.0.0.1:27017", "test_database")
for i in range (3):
  dbo.findone ("posts", {"author": "Steve Newman"})
  dbo.findall ("posts", {"author": "Hans Roh"})
aquests.fetchall ()
'''

REDIS = '''
dbo = aquests.redis ("127.0.0.1:6379")
dbo.get ("session-5ae675bc")
dbo.lrange ("user-saved-docs", 0, 3)
aquests.fetchall ()
'''

SQLITE3 = '''
dbo = aquests.sqlite3 ("sqlite3.db")
dbo.execute ("""
  drop table if exists people;
  create table people (name_last, age);
  insert into people values ('Cho', 42);
""")
aquests.fetchall ()
'''

MIXED_REQUESTS = '''
dbo = aquests.mongodb ("127.0.0.1:27017", "test_database")
aquests.configure (20)
for i in range (1000):
  aquests.get ("http://127.0.0.1:5000/")
  dbo.findone ("posts", {"author": "James Milton"})
aquests.fetchall ()
'''


# -- servers (one of each per module; the restart tests restart them in place) ---------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.psql("CREATE TABLE weather (city varchar(80), temp_low int, temp_hi int, "
                "prcp real, date date)", "mydb")
    server.psql("INSERT INTO weather VALUES ('San Francisco', 46, 50, 0.25, '1994-11-27'), "
                "('Hayward', 37, 54, 0.0, '1994-11-29')", "mydb")
    yield server
    server.remove()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield server
    server.stop()


def redis_cli(server: RedisServer, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-p", str(server.port), *args], capture_output=True,
                          text=True, timeout=10, check=True)
    return done.stdout.strip()


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new aquests session for the test."""
    monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())


@pytest.fixture
def run_example(session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run a README example: the import line first, the servers' addresses swapped in."""
    monkeypatch.chdir(tmp_path)

    def run(code: str, addresses: dict[str, str]) -> dict:
        for written, actual in addresses.items():
            code = code.replace(written, actual)
        namespace: dict = {}
        exec("from qactuar import client as aquests", namespace)
        exec(compile(code, "<aquests README example>", "exec"), namespace)
        return namespace

    return run


def fetch() -> list:
    """Run fetchall() and return the responses sorted by req_id."""
    got: list = []
    session = aquests_module._session
    default, session.callback = session.callback, got.append
    try:
        aquests_module.fetchall()
    finally:
        session.callback = default
    return sorted(got, key=lambda response: response.meta["req_id"])


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


# -- PostgreSQL ---------------------------------------------------------------------------


def test_postgresql_readme_example(run_example, postgres: PostgresServer, capsys) -> None:
    namespace = run_example(POSTGRESQL, {"127.0.0.1:5432": postgres.address})
    # As written, the example queues ten queries and never calls fetchall().
    assert lines(capsys) == []
    namespace["aquests"].fetchall()
    printed = lines(capsys)
    assert printed == ["[{'city': 'San Francisco', 'prcp': 0.25, 'temp_hi': 50, "
                       "'temp_low': 46}, {'city': 'Hayward', 'prcp': 0.0, 'temp_hi': 54, "
                       "'temp_low': 37}]"] * 10


def test_postgresql_calls(session: None, postgres: PostgresServer, capsys) -> None:
    from qactuar import client as aquests

    aquests.configure(2)
    dbo = aquests.postgresql(postgres.address, "mydb", ("test", "1111"),
                             meta={"job": "weather"})
    dbo.execute("SELECT city FROM weather WHERE temp_hi > $1 ORDER BY city", 52)
    dbo.do("CREATE TABLE IF NOT EXISTS notes (body text); INSERT INTO notes VALUES ('a')")
    aquests.fetchall()
    printed = sorted(lines(capsys))
    assert printed == ["REQID 0. postgresql execute 200 OK", "REQID 1. postgresql do 200 OK"]
    dbo.execute("SELECT city FROM weather WHERE temp_hi > $1 ORDER BY city", 52)
    dbo.execute("SELECT count(*) AS n FROM notes")
    first, second = fetch()
    assert (first.status_code, first.reason, first.data) == (200, "OK", [{"city": "Hayward"}])
    assert first.content == first.data and first.method == "execute"
    assert first.meta["job"] == "weather" and first.meta["req_method"] == "postgresql"
    assert (first.server, first.dbname, first.params) == (
        postgres.address, "mydb",
        ("SELECT city FROM weather WHERE temp_hi > $1 ORDER BY city", 52))
    assert second.data == [{"n": 1}]
    first.raise_for_status()  # a success does not raise
    # One pool per server: with one worker, every query goes over the same connection.
    aquests.configure(1)
    for _ in range(4):
        dbo.execute("SELECT pg_backend_pid() AS pid")
    assert len({response.data[0]["pid"] for response in fetch()}) == 1


def test_postgresql_failures_stay_in_their_response(session: None,
                                                    postgres: PostgresServer) -> None:
    from qactuar import client as aquests
    from qactuar.client.backends.base import QueryError

    aquests.configure(6, timeout=1.5)
    good = aquests.postgresql(postgres.address, "mydb", ("test", "1111"))
    good.execute("SELECT 1 AS one")
    aquests.postgresql(postgres.address, "mydb", ("test", "wrong")).execute("SELECT 1")
    good.execute("SELECT * FROM no_such_table")
    aquests.postgresql(f"127.0.0.1:{free_port()}", "mydb", ("test", "1111")).execute("SELECT 1")
    good.execute("SELECT pg_sleep(5) /* slow */")
    good.execute("SELECT pg_sleep(1.4) /* victim */")
    good.execute("SELECT 2 AS two")

    # Ends the victim's session from outside while it runs: a connection dropped mid-query.
    # Only once it sleeps: the query's text shows from its prepare on, and a session ended
    # between prepare and execution is another path (test_..._prepare_and_execute).
    def terminate_victim() -> None:
        def terminated() -> bool:
            return postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE query LIKE '%/* victim */' AND wait_event = 'PgSleep' "
                                 "AND pid <> pg_backend_pid()").strip() == "t"
        wait_until(terminated, 5, "the victim query")

    killer = threading.Thread(target=terminate_victim)
    killer.start()
    started = time.monotonic()
    answers = fetch()
    killer.join()
    assert time.monotonic() - started < 5  # nothing waits for the 5 s query
    codes = [(r.status_code, r.reason) for r in answers]
    assert codes == [(200, "OK"), (500, "InvalidPasswordError"), (500, "UndefinedTableError"),
                     (714, "Connection Failure"), (702, "Socket Timeout"),
                     (700, "Socket Error"), (200, "OK")]
    assert answers[0].data == [{"one": 1}] and answers[6].data == [{"two": 2}]
    assert 'relation "no_such_table" does not exist' in answers[2].error.message
    assert "password authentication failed" in answers[1].error.message
    with pytest.raises(QueryError, match="no_such_table"):
        answers[2].raise_for_status()
    assert answers[2].data is None


class PrepareWindowRelay:
    """A TCP relay to PostgreSQL that ends a session inside the driver's prepare/execute
    window, which a kill from outside hits only by chance.

    asyncpg prepares a statement (Parse, Describe, Flush), takes the server's row
    description as the prepare's answer and only then sends Bind/Execute.  For the
    connection whose Parse carries `marker`, the relay holds the row description, has the
    server end that session (pg_terminate_backend: the server's own FATAL error and
    close), then passes the description and the FATAL error on in one write and the
    close 0.2 s later, so the driver reads both before it sees the connection end.
    """

    def __init__(self, postgres: PostgresServer, marker: bytes) -> None:
        self.postgres = postgres
        self.marker = marker
        self.sessions_ended = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.postgres.port))
            marked = threading.Event()
            threading.Thread(target=self._to_server, args=(client, server, marked),
                             daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, marked),
                             daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket,
                   marked: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.marker in data:
                    marked.set()  # before the Parse reaches the server
                server.sendall(data)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _to_client(self, server: socket.socket, client: socket.socket,
                   marked: threading.Event) -> None:
        pending, backend_pid = b"", 0
        with contextlib.suppress(OSError):
            first = server.recv(1)  # asyncpg asks for TLS first: one untyped b"N" answers
            client.sendall(first)
            while data := server.recv(65536):
                pending += data
                passed = b""
                while len(pending) >= 5:
                    kind, length = pending[:1], struct.unpack("!I", pending[1:5])[0]
                    if len(pending) < 1 + length:
                        break
                    message, pending = pending[:1 + length], pending[1 + length:]
                    if kind == b"K":  # BackendKeyData: the session's process id
                        backend_pid = struct.unpack("!I", message[5:9])[0]
                    if kind == b"T" and marked.is_set():
                        client.sendall(passed)
                        self._end_session(backend_pid, server, client, message + pending)
                        return
                    passed += message
                client.sendall(passed)
        with contextlib.suppress(OSError):
            client.close()

    def _end_session(self, backend_pid: int, server: socket.socket, client: socket.socket,
                     held: bytes) -> None:
        ended = self.postgres.psql(f"SELECT pg_terminate_backend({backend_pid})").strip()
        assert ended == "t", ended
        while data := server.recv(65536):  # the server's FATAL error, then its close
            held += data
        client.sendall(held)
        self.sessions_ended += 1
        time.sleep(0.2)
        client.close()


def test_postgresql_session_ended_between_prepare_and_execute_is_a_dropped_connection(
        session: None, postgres: PostgresServer) -> None:
    """The driver reads the server's FATAL error out of turn (asyncpg's InternalClientError,
    "cannot switch to state 12"): still the dropped connection's 700, and the next call
    on that server gets a new connection."""
    from qactuar import client as aquests

    relay = PrepareWindowRelay(postgres, b"/* window */")
    try:
        aquests.configure(1, timeout=5)
        stub = aquests.postgresql(relay.address, "mydb", ("test", "1111"))
        stub.execute("SELECT 1 AS one /* window */")
        stub.execute("SELECT 2 AS two")
        answers = fetch()
    finally:
        relay.close()
    assert relay.sessions_ended == 1
    assert [(r.status_code, r.reason) for r in answers] == [(700, "Socket Error"), (200, "OK")]
    assert "the connection broke mid-call" in answers[0].error.message
    assert answers[1].data == [{"two": 2}]


def test_workers_bound_calls_across_kinds(session: None, postgres: PostgresServer,
                                          redis_server: RedisServer) -> None:
    """configure(2): two Redis calls blocked on a list hold both workers, so the
    PostgreSQL query queued after them does not start (no connection to mydb) until
    they are answered."""
    from qactuar import client as aquests

    aquests.configure(2, timeout=8)
    for _ in range(2):
        aquests.redis(redis_server.address).blpop("workers-gate", 6)
    aquests.postgresql(postgres.address, "mydb", ("test", "1111")).execute("SELECT 7 AS n")
    connected_while_blocked: list[int] = []

    def mydb_connections() -> int:
        return int(postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                 "'mydb' AND pid <> pg_backend_pid()"))

    def watch_then_release() -> None:
        wait_until(lambda: "blocked_clients:2" in redis_cli(redis_server, "info", "clients"),
                   5, "two blocked Redis calls")
        deadline = time.monotonic() + 0.5  # time enough for a free query to connect
        while time.monotonic() < deadline:
            connected_while_blocked.append(mydb_connections())
        redis_cli(redis_server, "rpush", "workers-gate", "a", "b")

    watcher = threading.Thread(target=watch_then_release)
    watcher.start()
    answers = fetch()
    watcher.join()
    assert sorted(tuple(r.data) for r in answers[:2]) == [("workers-gate", "a"),
                                                          ("workers-gate", "b")]
    assert (answers[2].status_code, answers[2].data) == (200, [{"n": 7}])
    assert connected_while_blocked and set(connected_while_blocked) == {0}


def test_postgresql_reconnects_after_a_restart(postgres: PostgresServer) -> None:
    from qactuar.client import Client

    async def main() -> list:
        async with Client() as client:
            db = client.postgresql(postgres.address, "mydb", ("test", "1111"))
            before = await db.execute("SELECT count(*) AS n FROM weather")
            # The loop runs meanwhile, as in a service: the driver sees its connection end.
            await asyncio.to_thread(postgres.restart)
            after = await db.execute("SELECT count(*) AS n FROM weather")
            return [before, after]

    assert asyncio.run(main()) == [[{"n": 2}], [{"n": 2}]]


# -- Redis --------------------------------------------------------------------------------


def test_redis_readme_example(run_example, redis_server: RedisServer, capsys) -> None:
    redis_cli(redis_server, "set", "session-5ae675bc", "response-of-session-5ae675bc")
    redis_cli(redis_server, "rpush", "user-saved-docs", "32534", "3453", "6786", "11")
    run_example(REDIS, {"127.0.0.1:6379": redis_server.address})
    assert lines(capsys) == ["REQID 0. redis get 200 OK", "REQID 1. redis lrange 200 OK"]
    dbo = aquests_module.redis(redis_server.address)
    dbo.get("session-5ae675bc")
    dbo.lrange("user-saved-docs", 0, 3)
    dbo.client_id()  # a two-word command: CLIENT ID
    session_value, saved, client_id = fetch()
    assert session_value.data == "response-of-session-5ae675bc"
    assert saved.data == ["32534", "3453", "6786", "11"]
    assert isinstance(client_id.data, int)


def test_redis_auth_and_failures(session: None, redis_server: RedisServer) -> None:
    from qactuar import client as aquests

    redis_cli(redis_server, "set", "a-string", "v")
    aquests.configure(5, timeout=1)
    aquests.redis(redis_server.address, 0, ("alice", "secret")).set("k", "v")
    aquests.redis(redis_server.address, 0, ("alice", "wrong")).get("k")
    aquests.redis(redis_server.address).lpush("a-string", "x")  # WRONGTYPE
    aquests.redis(f"127.0.0.1:{free_port()}").get("k")
    aquests.redis(redis_server.address).blpop("never-pushed", 5)
    aquests.redis(redis_server.address, 1).get("k")
    answers = fetch()
    codes = [(r.status_code, r.reason) for r in answers]
    assert codes == [(200, "OK"), (500, "AuthenticationError"), (500, "ResponseError"),
                     (714, "Connection Failure"), (702, "Socket Timeout"), (200, "OK")]
    assert answers[0].data is True and answers[5].data is None  # database 1 has no k
    assert "WRONGTYPE" in answers[2].error.message


def test_redis_connection_dropped_mid_command(session: None, redis_server: RedisServer) -> None:
    from qactuar import client as aquests

    aquests.configure(2, timeout=5)
    aquests.redis(redis_server.address).blpop("never-pushed", 4)
    aquests.redis(redis_server.address).ping()

    def kill_blocked() -> None:
        wait_until(lambda: "blocked_clients:1" in redis_cli(redis_server, "info", "clients"),
                   5, "the blocked client")
        redis_cli(redis_server, "client", "kill", "type", "normal")

    killer = threading.Thread(target=kill_blocked)
    killer.start()
    dropped, pong = fetch()
    killer.join()
    assert (dropped.status_code, pong.status_code, pong.data) == (700, 200, True)


def test_redis_reconnects_after_a_restart(redis_server: RedisServer) -> None:
    from qactuar.client import Client

    async def main() -> list:
        async with Client() as client:
            r = client.redis(redis_server.address)
            first = await r.set("restart-key", "1")
            await asyncio.to_thread(redis_server.restart)
            return [first, await r.set("restart-key", "2"), await r.get("restart-key")]

    assert asyncio.run(main()) == [True, True, "2"]


# -- MongoDB ------------------------------------------------------------------------------


def test_mongodb_readme_example(run_example, mongo: MongoServer, capsys) -> None:
    dbo = aquests_module.mongodb(mongo.address, "test_database")
    dbo.insert("posts", [{"author": "Steve Newman", "title": "How to swim"},
                         {"author": "Hans Roh", "title": "One"},
                         {"author": "Hans Roh", "title": "Two"}])
    inserted, = fetch()
    assert inserted.status_code == 200 and inserted.data["n"] == 3
    capsys.readouterr()
    run_example(MONGODB, {"127.0.0.1:27017": mongo.address})
    assert sorted(lines(capsys)) == sorted(
        [f"REQID {i}. mongodb {'findone' if i % 2 else 'findall'} 200 OK"
         for i in range(1, 7)])  # REQID 0 was the insert
    dbo = aquests_module.mongodb(mongo.address, "test_database")
    dbo.findone("posts", {"author": "Steve Newman"})
    dbo.findall("posts", {"author": "Hans Roh"})
    one, every = fetch()
    assert set(one.data) == {"starting_from", "number_returned", "cursor_id", "data"}
    assert one.data["number_returned"] == 1 and one.data["cursor_id"] == 0
    assert {k: v for k, v in one.data["data"][0].items() if k != "_id"} == {
        "author": "Steve Newman", "title": "How to swim"}
    assert sorted(doc["title"] for doc in every.data["data"]) == ["One", "Two"]


def test_mongodb_methods(session: None, mongo: MongoServer) -> None:
    from qactuar import client as aquests

    db = aquests.mongodb(mongo.address, "methods")
    db.insert("items", [{"n": i, "kind": "odd" if i % 2 else "even"} for i in range(10)])
    (inserted,) = fetch()
    assert inserted.data["n"] == 10
    db.update("items", {"kind": "odd"}, {"$set": {"seen": True}})
    db.updateone("items", {"n": 0}, {"n": 0, "kind": "zero"})
    db.upsert("items", {"n": 100}, {"kind": "new"})
    db.upsertone("items", {"n": 101}, {"$set": {"kind": "newer"}})
    db.delete("items", {"kind": "even"}, 1)  # flag 1: one document
    db.find("items", {"seen": True}, 1, 2)
    more: list = []

    def then_get_more(response) -> None:  # the cursor lives as long as this fetchall()
        aquests.mongodb(mongo.address, "methods", callback=more.append).get_more(
            "items", response.data["cursor_id"], 4)

    aquests.mongodb(mongo.address, "methods", callback=then_get_more).findkc("items", {}, 0, 3)
    updated, replaced, upserted, upserted_one, deleted, page = fetch()
    assert (updated.data["matched"], updated.data["modified"]) == (5, 5)
    assert replaced.data["modified"] == 1
    assert upserted.data["upserted_id"] is not None
    assert upserted_one.data["upserted_id"] is not None
    assert deleted.data == {"n": 1}
    assert page.data["starting_from"] == 1 and page.data["number_returned"] == 2
    assert more[0].status_code == 200 and more[0].data["number_returned"] == 4


def test_mongodb_cursor_kept_across_calls(mongo: MongoServer) -> None:
    """findkc, get_more and kill_cursors in the async interface (one Client's pools)."""
    from qactuar.client import Client

    async def main() -> tuple:
        async with Client() as client:
            db = client.mongodb(mongo.address, "cursors")
            await db.insert("c", [{"i": i} for i in range(8)])
            first = await db.findkc("c", {}, 0, 3)
            more = await db.get_more("c", first["cursor_id"], 3)
            killed = await db.kill_cursors([first["cursor_id"]])
            return first, more, killed

    first, more, killed = asyncio.run(main())
    assert [d["i"] for d in first["data"]] == [0, 1, 2]
    assert [d["i"] for d in more["data"]] == [3, 4, 5]
    assert killed == {"cursors_killed": [first["cursor_id"]]}


def test_mongodb_auth_and_failures(session: None, tmp_path: Path, mongo: MongoServer) -> None:
    from qactuar import client as aquests

    secured = MongoServer(tmp_path, users=(("admin", "secret"),))
    try:
        aquests.configure(4, timeout=2)
        # mongoeco fails SCRAM-SHA-1, PyMongo's choice when the server does not list the
        # user's mechanisms: the dict form of auth names SCRAM-SHA-256.
        for password in ("secret", "wrong"):
            aquests.mongodb(secured.address, "app", {
                "username": "admin", "password": password,
                "authMechanism": "SCRAM-SHA-256"}).insert("x", {"a": 1})
        aquests.mongodb(f"127.0.0.1:{free_port()}", "app").findone("x", {})
        aquests.mongodb(mongo.address, "app").insert("y", {"_id": 1})
        aquests.mongodb(mongo.address, "app").insert("y", {"_id": 1})  # duplicate key
        started = time.monotonic()
        answers = fetch()
        assert time.monotonic() - started < 5
    finally:
        secured.stop()
    codes = [(r.status_code, r.reason) for r in answers]
    assert codes[0] == (200, "OK") and codes[3] == (200, "OK")
    assert codes[1] == (500, "OperationFailure"), answers[1].error
    assert codes[2] == (714, "Connection Failure")
    assert codes[4][0] == 500 and "duplicate" in answers[4].error.message.lower()


def test_mongodb_reconnects_after_a_restart(mongo: MongoServer) -> None:
    from qactuar.client import Client

    async def main() -> list:
        async with Client() as client:
            db = client.mongodb(mongo.address, "restart")
            await db.insert("r", {"k": 1})
            await asyncio.to_thread(mongo.restart)  # in memory: it comes back empty
            await db.insert("r", {"k": 2})
            return (await db.findall("r", {}))["data"]

    assert [doc["k"] for doc in asyncio.run(main())] == [2]


def test_mixed_requests_readme_example(run_example, mongo: MongoServer, web: ServerProcess,
                                       capsys) -> None:
    run_example(MIXED_REQUESTS, {"127.0.0.1:27017": mongo.address,
                                 "127.0.0.1:5000": f"127.0.0.1:{web.port}"})
    printed = lines(capsys)
    assert len(printed) == 2000
    assert sorted({line.split(". ", 1)[1] for line in printed}) == [
        "HTTP/1.1 200 OK 4210 bytes received", "mongodb findone 200 OK"]
    assert aquests_module.result.statuses == {200: 2000}


# -- SQLite -------------------------------------------------------------------------------


def test_sqlite3_readme_example(run_example, tmp_path: Path, capsys) -> None:
    run_example(SQLITE3, {})
    assert lines(capsys) == ["REQID 0. sqlite3 execute 200 OK"]
    dbo = aquests_module.sqlite3(str(tmp_path / "sqlite3.db"))
    dbo.execute("SELECT name_last, age FROM people WHERE age > ?", 40)
    dbo.execute("SELECT * FROM nowhere")
    rows, missing = fetch()
    assert rows.data == [{"name_last": "Cho", "age": 42}]
    assert (missing.status_code, missing.reason) == (500, "OperationalError")
    assert "no such table: nowhere" in missing.error.message


def test_sqlite3_does_not_block_the_event_loop(tmp_path: Path) -> None:
    from qactuar.client import Client

    async def main() -> tuple[list, int]:
        ticks = 0
        done = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        async with Client() as client:
            ticker = asyncio.create_task(tick())
            rows = await client.sqlite3(str(tmp_path / "slow.db")).execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 300000) SELECT count(*) AS n FROM c")
            done.set()
            await ticker
        return rows, ticks

    rows, ticks = asyncio.run(main())
    assert rows == [{"n": 300000}]
    assert ticks >= 5  # the loop kept running while SQLite counted (in its own thread)


# -- the async interface, and what every backend shares -----------------------------------


def test_async_interface(postgres: PostgresServer, redis_server: RedisServer,
                         mongo: MongoServer, tmp_path: Path) -> None:
    from qactuar.client import Client, ConnectError
    from qactuar.client.backends.base import QueryError

    async def main() -> dict:
        async with Client(timeout=3) as client:
            pg = client.postgresql(postgres.address, "mydb", ("test", "1111"))
            rd = client.redis(redis_server.address)
            mg = client.mongodb(mongo.address, "async_db")
            lite = client.sqlite3(str(tmp_path / "a.db"))
            await lite.execute("CREATE TABLE t (x)")
            await lite.execute("INSERT INTO t VALUES (?)", 7)
            await rd.set("async", "yes")
            results = await asyncio.gather(
                pg.execute("SELECT 41 + 1 AS answer"), rd.exists("async"),
                rd.get("async"), mg.insert("docs", {"a": 1}), lite.execute("SELECT x FROM t"))
            with pytest.raises(QueryError) as query_error:
                await pg.execute("SELEC 1")
            with pytest.raises(ConnectError):
                await client.redis(f"127.0.0.1:{free_port()}").get("k")
            return {"results": results, "error": query_error.value}

    answer = asyncio.run(main())
    answers = answer["results"]
    assert answers[0] == [{"answer": 42}] and answers[1:3] == [1, "yes"]
    assert answers[3]["n"] == 1 and answers[4] == [{"x": 7}]
    assert answer["error"].reason == "PostgresSyntaxError" and answer["error"].status_code == 500


def test_drivers_are_imported_only_when_a_call_is_made(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from qactuar import client as aquests\n"
        "from qactuar.client import Client\n"
        "aquests.postgresql('127.0.0.1:1', 'db').execute('SELECT 1')\n"
        "aquests.redis('127.0.0.1:1').get('k')\n"
        "aquests.mongodb('127.0.0.1:1', 'db').findone('c', {})\n"
        "aquests.sqlite3('x.db').execute('SELECT 1')\n"
        "drivers = ('asyncpg', 'redis', 'pymongo', 'aiosqlite', 'grpc', 'google.protobuf')\n"
        "print(sorted(name for name in drivers if name in sys.modules))\n"
        "aquests.configure(timeout=1, callback=lambda response: None)\n"
        "aquests.fetchall()\n"
        "print(sorted(name for name in drivers if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['aiosqlite', 'asyncpg', 'pymongo', 'redis']"]


@pytest.mark.parametrize(("kind", "module", "extra"), [
    ("postgresql", "asyncpg", "postgresql"), ("redis", "redis", "redis"),
    ("mongodb", "pymongo", "mongodb"), ("sqlite3", "aiosqlite", "sqlite"),
    ("grpc", "google.protobuf", "grpc")])
def test_a_missing_extra_is_one_clear_error(session: None, monkeypatch: pytest.MonkeyPatch,
                                            kind: str, module: str, extra: str) -> None:
    from qactuar import client as aquests
    from qactuar.client.backends.base import MissingExtra

    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    make = getattr(aquests, kind)
    target = "http://127.0.0.1:1/routeguide.RouteGuide" if kind == "grpc" else \
        ("x.db" if kind == "sqlite3" else "127.0.0.1:1")
    with pytest.raises(MissingExtra, match=rf"pip install 'qactuar\[{extra}\]'"):
        make(target)
    assert aquests.qsize() == 0

"""Every ```python example of docs/client-backends.md runs against real servers, and
prints what the page says.

The page addresses PostgreSQL as 127.0.0.1:5432, Redis as 127.0.0.1:6379, MongoDB as
127.0.0.1:27017, the gRPC route_guide server as 127.0.0.1:50051 and the JSON-RPC app
as http://127.0.0.1:8000; the test substitutes the private servers it started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import qactuar.client.aquests as aquests_module
from backend_servers import (
    MongoServer,
    PostgresServer,
    RedisServer,
    RouteGuideServer,
    compile_route_guide,
)
from conftest import ServerProcess
from docs_examples import code_blocks

for _module in ("asyncpg", "redis", "pymongo", "aiosqlite", "grpc_tools"):
    pytest.importorskip(_module)

EXAMPLES = code_blocks("client-backends.md", "python")
# What each example prints (in order, or a line it must contain).
PRINTS = {
    0: ["200 []", "200 [{'city': 'Hayward', 'temp_hi': 54}]"],
    1: ["rpush 3", "lrange ['32534', '3453', '6786']"],
    2: ["REQID 0. mongodb insert 200 OK", "1 How to swim", "1 Fishing"],
    3: ["[]", "[{'name_last': 'Cho', 'age': 42}]"],
    4: ["3", "6", "-32601: Method not found"],
    6: ["REQID 0. 500 UndefinedTableError: relation \"no_such_table\" does not exist",
        "REQID 1. postgresql execute 200 OK"],
    7: ["[{'answer': 42}] 42", "5", "PostgresSyntaxError"],
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    postgres = PostgresServer()
    redis_server = RedisServer(tmp_path_factory.mktemp("redis"))
    mongo = MongoServer(tmp_path_factory.mktemp("mongo"))
    protos = tmp_path_factory.mktemp("route_guide")
    pb2, pb2_grpc = compile_route_guide(protos)
    route_guide = RouteGuideServer(pb2, pb2_grpc)
    jsonrpc = ServerProcess(["apps.jsonrpc_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield {"postgres": postgres, "redis": redis_server, "mongo": mongo,
           "route_guide": route_guide, "jsonrpc": jsonrpc, "protos": protos}
    jsonrpc.stop()
    route_guide.stop()
    mongo.stop()
    redis_server.stop()
    postgres.remove()


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) == 8


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(servers: dict, index: int, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(servers["protos"]))
    source = (EXAMPLES[index]
              .replace("127.0.0.1:5432", servers["postgres"].address)
              .replace("127.0.0.1:6379", servers["redis"].address)
              .replace("127.0.0.1:27017", servers["mongo"].address)
              .replace("127.0.0.1:50051", f"127.0.0.1:{servers['route_guide'].port}")
              .replace("http://127.0.0.1:8000", servers["jsonrpc"].url))
    exec(compile(source, f"docs/client-backends.md example {index + 1}", "exec"),
         {"__name__": "docs"})
    printed = capsys.readouterr().out.splitlines()
    if index in PRINTS:
        assert sorted(printed) == sorted(PRINTS[index])
    elif index == 5:  # gRPC: the feature, then the route's summary
        assert printed[0] == '200 name: "Berkshire Valley Management Area Trail, Jefferson, ' \
            'NJ, USA"' and "point_count: 2" in "\n".join(printed)
    else:
        assert printed

"""The client's gRPC and JSON-RPC requests: gRPC over the client's own HTTP/2 against a
real grpcio server (route_guide compiled from tests/protos/route_guide.proto with
grpcio-tools), JSON-RPC 2.0 and XML-RPC against Qactuar serving small apps.

The aquests README's gRPC example is copied from hansroh/aquests' README.rst; only
the import line (run first) and the server's address change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qactuar.client.aquests as aquests_module
from backend_servers import FEATURES, RouteGuideServer, compile_route_guide, free_port
from conftest import ServerProcess

pytest.importorskip("grpc")
pytest.importorskip("google.protobuf")

GRPC = '''
import route_guide_pb2

stub = aquests.grpc ("http://127.0.0.1:5000/routeguide.RouteGuide")
point = route_guide_pb2.Point (latitude=409146138, longitude=-746188906)
for i in range (3):
  stub.GetFeature (point)
aquests.fetchall ()
'''

# The README's "Returns" for that example: the Feature message as text.
GRPC_RETURNS = '''name: "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"
location {
  latitude: 409146138
  longitude: -746188906
}
'''


@pytest.fixture(scope="module")
def route_guide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    out = tmp_path_factory.mktemp("route_guide")
    pb2, pb2_grpc = compile_route_guide(out)
    return pb2, pb2_grpc, out


@pytest.fixture(scope="module")
def grpc_server(route_guide: tuple[Any, Any, Path]) -> Iterator[RouteGuideServer]:
    server = RouteGuideServer(route_guide[0], route_guide[1])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jsonrpc_server() -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.jsonrpc_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def xmlrpc_server() -> Iterator[ServerProcess]:
    server = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield server
    server.stop()


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())


def fetch() -> list:
    got: list = []
    session = aquests_module._session
    default, session.callback = session.callback, got.append
    try:
        aquests_module.fetchall()
    finally:
        session.callback = default
    return sorted(got, key=lambda response: response.meta["req_id"])


# -- gRPC ---------------------------------------------------------------------------------


def test_grpc_readme_example(session: None, route_guide, grpc_server: RouteGuideServer,
                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(route_guide[2]))  # where route_guide_pb2 was compiled
    code = GRPC.replace("127.0.0.1:5000", f"127.0.0.1:{grpc_server.port}")
    namespace: dict = {}
    exec("from qactuar import client as aquests", namespace)
    exec(compile(code, "<aquests README gRPC example>", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    pb2 = route_guide[0]
    feature = pb2.Feature(name=FEATURES[0][0], location=namespace["point"])
    size = 5 + len(feature.SerializeToString())  # the message and its 5-byte prefix
    assert sorted(printed) == [f"REQID {i}. HTTP/2.0 200 OK {size} bytes received"
                               for i in range(3)]
    namespace["stub"].GetFeature(namespace["point"])
    (answer,) = fetch()
    assert str(answer.data) == GRPC_RETURNS
    assert answer.get_header("content-type") == "application/grpc"
    assert answer.get_header("grpc-status") == "0" and ("grpc-status", "0") in answer.trailers
    assert answer.method == "GetFeature" and answer.version == "2.0"


def test_grpc_streaming_calls(session: None, route_guide, grpc_server: RouteGuideServer) -> None:
    from qactuar import client as aquests

    pb2 = route_guide[0]
    stub = aquests.grpc(grpc_server.url)
    stub.ListFeatures(pb2.Rectangle(lo=pb2.Point(latitude=400000000, longitude=-750000000),
                                    hi=pb2.Point(latitude=420000000, longitude=-730000000)))
    points = [pb2.Point(latitude=lat, longitude=lon) for _, lat, lon in FEATURES]
    stub.RecordRoute([*points, pb2.Point(latitude=5, longitude=5)])
    notes = [pb2.RouteNote(location=points[0], message=f"note {i}") for i in range(3)]
    stub.RouteChat(notes)
    listed, summary, chat = fetch()
    assert [feature.name for feature in listed.data] == [name for name, _, _ in FEATURES]
    assert (summary.data.point_count, summary.data.feature_count) == (4, 3)
    # Each note is answered with the earlier notes at its point: 0, then 0 and 1.
    assert [note.message for note in chat.data] == ["note 0", "note 0", "note 1"]


def test_grpc_compressed_answers_are_accepted(session: None, route_guide,
                                              grpc_server: RouteGuideServer) -> None:
    from qactuar import client as aquests

    pb2 = route_guide[0]
    stub = aquests.grpc(grpc_server.url, headers={"compress": "gzip"})
    stub.GetFeature(pb2.Point(latitude=3, longitude=3))  # a 5,000-byte name: compressed
    stub.GetFeature(pb2.Point(latitude=409146138, longitude=-746188906))  # small: not
    big, small = fetch()
    assert big.get_header("grpc-encoding") == "gzip"
    assert big.content[0] == 1 and len(big.content) < 1000  # the compressed flag, as received
    assert big.data.name == "x" * 5000
    assert small.content[0] == 0 and small.data.name == FEATURES[0][0]


def test_grpc_status_timeout_and_down_server(session: None, route_guide,
                                             grpc_server: RouteGuideServer) -> None:
    from qactuar import client as aquests
    from qactuar.client.backends.grpc import GrpcError

    pb2 = route_guide[0]
    aquests.configure(4, timeout=1)
    stub = aquests.grpc(grpc_server.url)
    stub.GetFeature(pb2.Point(latitude=0, longitude=0))  # NOT_FOUND
    stub.GetFeature(pb2.Point(latitude=1, longitude=0))  # answers after 3 s
    aquests.grpc(f"http://127.0.0.1:{free_port()}/routeguide.RouteGuide").GetFeature(
        pb2.Point(latitude=2, longitude=2))
    stub.GetFeature(pb2.Point(latitude=2, longitude=2))
    started = time.monotonic()
    missing, slow, down, fine = fetch()
    assert time.monotonic() - started < 3
    assert (missing.status_code, missing.reason) == (404, "NOT_FOUND")
    assert missing.error.message == "no feature at latitude 0"
    assert missing.get_header("grpc-status") == "5" and missing.data is None
    with pytest.raises(GrpcError) as raised:
        missing.raise_for_status()
    assert (raised.value.code, raised.value.name) == (5, "NOT_FOUND")
    assert (slow.status_code, down.status_code) == (702, 714)
    assert (fine.status_code, fine.data.name) == (200, "")


def test_grpc_async_interface_and_reconnection(route_guide,
                                               grpc_server: RouteGuideServer) -> None:
    from qactuar.client import Client
    from qactuar.client.backends.grpc import GrpcError

    pb2 = route_guide[0]

    async def main() -> tuple:
        async with Client(timeout=5) as client:
            stub = client.grpc(grpc_server.url)
            first = await stub.GetFeature(pb2.Point(latitude=407838351,
                                                    longitude=-746143763))
            with pytest.raises(GrpcError, match="latitude 0"):
                await stub.GetFeature(pb2.Point(latitude=0, longitude=0))
            await asyncio.to_thread(grpc_server.stop)
            await asyncio.to_thread(grpc_server.start)  # the same port: a restart
            again = await stub.GetFeature(pb2.Point(latitude=407838351,
                                                    longitude=-746143763))
            listed = await stub.ListFeatures(pb2.Rectangle(
                lo=pb2.Point(latitude=0, longitude=-800000000),
                hi=pb2.Point(latitude=500000000, longitude=0)))
            return first, again, listed

    first, again, listed = asyncio.run(main())
    assert first.name == again.name == FEATURES[1][0]
    assert len(listed) == 3


def test_grpc_stub_errors_are_raised_where_the_call_is_made(session: None, route_guide,
                                                            grpc_server) -> None:
    from qactuar import client as aquests

    with pytest.raises(ValueError, match=r"package\.Service"):
        aquests.grpc("http://127.0.0.1:1/")
    with pytest.raises(LookupError, match="import its _pb2 module"):
        aquests.grpc("http://127.0.0.1:1/nowhere.Service").Call(route_guide[0].Point())
    with pytest.raises(AttributeError, match="no method Nope"):
        aquests.grpc(grpc_server.url).Nope(route_guide[0].Point())
    assert aquests.qsize() == 0


# -- JSON-RPC and XML-RPC -----------------------------------------------------------------


def test_jsonrpc_aquests_interface(session: None, jsonrpc_server: ServerProcess) -> None:
    from qactuar import client as aquests
    from qactuar.client.backends.rpc import JSONRPCFault

    stub = aquests.jsonrpc(jsonrpc_server.url + "/", meta={"job": "sums"})
    stub.add(1, 2)
    stub.subtract(minuend=10, subtrahend=4)
    stub.missing()
    stub.echo("a", [1, 2], {"b": None})
    added, subtracted, missing, echoed = fetch()
    assert (added.status_code, added.data, added.meta["job"]) == (200, 3, "sums")
    assert added.meta["req_method"] == "jsonrpc"
    assert added.request.headers["Content-Type"] == "application/json"
    assert subtracted.data == 6
    assert isinstance(missing.data, JSONRPCFault) and missing.data.code == -32601
    assert echoed.data == ["a", [1, 2], {"b": None}]


def test_rpc_async_interface(jsonrpc_server: ServerProcess, xmlrpc_server: ServerProcess) -> None:
    import xmlrpc.client

    from qactuar.client import Client, ConnectError
    from qactuar.client.backends.rpc import JSONRPCFault

    async def main() -> list:
        async with Client() as client:
            json_stub = client.jsonrpc(jsonrpc_server.url + "/")
            xml_stub = client.rpc(xmlrpc_server.url + "/rpc")
            results = list(await asyncio.gather(json_stub.add(2, 3), xml_stub.add(4, 5),
                                                xml_stub.package_releases("roundup")))
            with pytest.raises(JSONRPCFault, match="Method not found"):
                await json_stub.nothing()
            with pytest.raises(xmlrpc.client.Fault):
                await xml_stub.nothing()
            with pytest.raises(ConnectError):
                await client.jsonrpc(f"http://127.0.0.1:{free_port()}/").add(1, 1)
            return results

    assert asyncio.run(main()) == [5, 9, ["1.5.1"]]

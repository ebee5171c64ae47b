"""The client against a real Qactuar server, over HTTP/1.1 and HTTP/2 (h2c prior knowledge):
methods, bodies, headers, keep-alive, streams both ways, HTTP/2 multiplexing."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from client_helpers import client_app_server, run

from conftest import ServerProcess
from qactuar.client import Client, Limits, Response

__all__ = ["client_app_server"]
PROTOCOLS = {"http1": False, "http2": "prior-knowledge"}


@pytest.fixture(params=list(PROTOCOLS))
def http2(request: pytest.FixtureRequest) -> bool | str:
    return PROTOCOLS[request.param]


def expected_version(http2: bool | str) -> str:
    return "HTTP/2" if http2 else "HTTP/1.1"


def test_get_with_params_and_headers(client_app_server: ServerProcess, http2) -> None:
    async def main() -> Response:
        async with Client(http2=http2, headers={"X-Client": "yes"}) as client:
            return await client.get(f"{client_app_server.url}/method",
                                    params={"a": "1", "b": ["x", "y"]},
                                    headers={"X-Request": "one"})

    response = run(main())
    assert response.status_code == 200 and response.reason == "OK"
    assert response.http_version == expected_version(http2)
    data = response.json()
    assert data["method"] == "GET"
    assert data["query"] == "a=1&b=x&b=y"
    headers = dict(data["headers"])
    assert headers["x-client"] == "yes" and headers["x-request"] == "one"
    assert headers["user-agent"].startswith("qactuar-client/")
    assert response.headers.get("content-type") == "application/json"
    assert response.headers["Content-Type"] == "application/json"
    assert ("content-type", "application/json") in response.headers.items()
    assert response.url.endswith("/method?a=1&b=x&b=y")
    assert response.request.method == "GET" and response.elapsed > 0


def test_every_method_and_body_kind(client_app_server: ServerProcess, http2) -> None:
    url = f"{client_app_server.url}/method"

    async def main() -> list[Response]:
        async with Client(http2=http2) as client:
            return [
                await client.post(url, content=b"raw bytes"),
                await client.put(url, content="text body"),
                await client.patch(url, json={"k": [1, 2]}),
                await client.post(url, data={"name": "James Milton"}),
                await client.delete(url),
                await client.options(url),
                await client.head(url),
                await client.request("GET", url),
            ]

    post, put, patch, form, delete, options, head, get = run(main())
    assert post.json()["body"] == "raw bytes" and post.json()["method"] == "POST"
    assert put.json()["body"] == "text body"
    assert json.loads(patch.json()["body"]) == {"k": [1, 2]}
    assert dict(patch.json()["headers"])["content-type"] == "application/json"
    assert form.json()["body"] == "name=James+Milton"
    assert dict(form.json()["headers"])["content-type"] == "application/x-www-form-urlencoded"
    assert delete.json()["method"] == "DELETE" and options.json()["method"] == "OPTIONS"
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert get.json()["method"] == "GET"
    assert post.request.content == b"raw bytes"


def test_keep_alive_reuses_one_connection(basic_server: ServerProcess) -> None:
    async def main() -> tuple[list[str], int]:
        async with Client(http2=False) as client:
            texts = [(await client.get(f"{basic_server.url}/hello")).text for _ in range(20)]
            pool = next(iter(client._pools.values()))
            return texts, len(pool.connections)

    texts, connections = run(main())
    assert texts == ["Hello, world!"] * 20
    assert connections == 1


def test_concurrent_http1_requests_respect_the_connection_limit(
        basic_server: ServerProcess) -> None:
    async def main() -> tuple[set[str], int, int]:
        async with Client(http2=False, limits=Limits(max_connections_per_origin=4)) as client:
            most = 0

            async def one() -> str:
                nonlocal most
                response = await client.get(f"{basic_server.url}/sleep?s=0.02")
                pool = next(iter(client._pools.values()))
                most = max(most, len(pool.connections))
                return response.text

            texts = await asyncio.gather(*[one() for _ in range(40)])
            return set(texts), most, len(texts)

    texts, most, count = run(main())
    assert texts == {"slept"} and count == 40
    assert most == 4


def test_pipelining_sends_before_answers(basic_server: ServerProcess) -> None:
    async def main() -> tuple[list[str], int]:
        limits = Limits(max_connections_per_origin=1, pipelining=8)
        async with Client(http2=False, limits=limits) as client:
            texts = await asyncio.gather(*[client.get(f"{basic_server.url}/stream?n=2")
                                           for _ in range(30)])
            pool = next(iter(client._pools.values()))
            return [t.text for t in texts], pool.connections[0].served

    texts, served = run(main())
    assert texts == ["chunk-0\nchunk-1\n"] * 30
    assert served == 30


def test_pipelining_with_head_requests_among_them(basic_server: ServerProcess) -> None:
    async def main() -> list[tuple[int, bytes]]:
        limits = Limits(max_connections_per_origin=1, pipelining=4)
        async with Client(http2=False, limits=limits) as client:
            answers = await asyncio.gather(*[
                client.request("HEAD" if i % 3 == 0 else "GET", f"{basic_server.url}/sized?n=5")
                for i in range(24)])
            return [(a.status_code, a.content) for a in answers]

    answers = run(main())
    assert answers == [(200, b"" if i % 3 == 0 else answers[1][1]) for i in range(24)]
    assert len(answers[1][1]) == 5


def test_streamed_response_and_streamed_request(client_app_server: ServerProcess,
                                                http2) -> None:
    async def body():
        for _ in range(16):
            yield b"y" * 65536

    async def main() -> tuple[int, int, str]:
        async with Client(http2=http2) as client:
            received = 0
            chunks = 0
            async with client.stream("GET", f"{client_app_server.url}/big?mb=4") as response:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    chunks += 1
            uploaded = await client.post(f"{client_app_server.url}/count", content=body())
            return received, chunks, uploaded.text

    received, chunks, uploaded = run(main())
    assert received == 4 * 1024 * 1024 and chunks > 1
    assert uploaded == str(16 * 65536)


def test_stream_closed_early_leaves_the_client_working(client_app_server: ServerProcess,
                                                       http2) -> None:
    async def main() -> str:
        async with Client(http2=http2) as client:
            async with client.stream("GET", f"{client_app_server.url}/big?mb=20") as response:
                async for _ in response.aiter_bytes():
                    break  # the rest is given up
            return (await client.get(f"{client_app_server.url}/method")).json()["method"]

    assert run(main()) == "GET"


def test_http2_multiplexes_up_to_the_servers_stream_limit() -> None:
    server = ServerProcess(["apps.basic:app", "--host", "127.0.0.1", "--port", "0",
                            "--http2", "on", "--h2-max-concurrent-streams", "100"])
    try:
        async def main() -> tuple[set[str], int, list[int]]:
            async with Client(http2="prior-knowledge") as client:
                responses = await asyncio.gather(*[
                    client.get(f"{server.url}/sleep?s=0.2") for _ in range(200)])
                pool = next(iter(client._pools.values()))
                return ({r.text for r in responses}, len(pool.connections),
                        [c.stream_limit for c in pool.connections])

        texts, connections, limits = run(main())
    finally:
        server.stop()
    assert texts == {"slept"}
    assert connections == 2
    assert limits == [100, 100]


def test_our_stream_limit_below_the_servers(basic_server: ServerProcess) -> None:
    async def main() -> int:
        limits = Limits(max_streams_per_connection=10)
        async with Client(http2="prior-knowledge", limits=limits) as client:
            await asyncio.gather(*[client.get(f"{basic_server.url}/sleep?s=0.1")
                                   for _ in range(30)])
            return len(next(iter(client._pools.values())).connections)

    assert run(main()) == 3


def test_large_bodies_cross_http2_flow_control(client_app_server: ServerProcess) -> None:
    payload = bytes(range(256)) * 12000  # 3 MB: several windows' worth each way

    async def main() -> tuple[str, int]:
        async with Client(http2="prior-knowledge") as client:
            uploaded = await client.put(f"{client_app_server.url}/count", content=payload)
            big = await client.get(f"{client_app_server.url}/big?mb=3")
            return uploaded.text, len(big.content)

    assert run(main()) == (str(len(payload)), 3 * 1024 * 1024)


def test_idle_connections_close_after_keepalive_expiry(basic_server: ServerProcess,
                                                       http2) -> None:
    async def main() -> tuple[int, int, str]:
        limits = Limits(keepalive_expiry=0.2)
        async with Client(http2=http2 and "prior-knowledge", limits=limits) as client:
            await client.get(f"{basic_server.url}/hello")
            pool = next(iter(client._pools.values()))
            before = len(pool.connections)
            deadline = asyncio.get_running_loop().time() + 5
            while pool.connections and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            after = len(pool.connections)
            again = await client.get(f"{basic_server.url}/hello")
            return before, after, again.text

    assert run(main()) == (1, 0, "Hello, world!")


class _ImportRecorder:
    """A meta-path finder that only records: it sees every import not already done."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None


def test_no_import_on_the_request_path(client_app_server: ServerProcess, http2) -> None:
    recorder = _ImportRecorder()

    async def requests(client: Client) -> None:
        url = client_app_server.url
        await client.get(f"{url}/method", params={"a": "1"}, headers={"x": "y"})
        await client.post(f"{url}/method", json={"a": 1})
        await client.get(f"{url}/gzip")
        await client.get(f"{url}/set-cookie?name=a&value=b&then=/cookies")
        async with client.stream("GET", f"{url}/big?mb=1") as response:
            await response.aread()

    async def main() -> None:
        async with Client(http2=http2) as client:
            await requests(client)  # the first round may import (h2 on its first connection)
            sys.meta_path.insert(0, recorder)
            try:
                for _ in range(5):
                    await requests(client)
            finally:
                sys.meta_path.remove(recorder)

    run(main())
    assert recorder.names == []


def test_stream_of_answers_without_a_body(client_app_server: ServerProcess,
                                          basic_server: ServerProcess, http2) -> None:
    async def main() -> list[tuple[int, bytes]]:
        async with Client(http2=http2, timeout=5) as client:
            answers = []
            for method, url in (("GET", f"{basic_server.url}/status/204"),
                                ("GET", f"{basic_server.url}/status/304"),
                                ("HEAD", f"{client_app_server.url}/method")):
                async with client.stream(method, url) as response:
                    answers.append((response.status_code, await response.aread()))
            after = await client.get(f"{client_app_server.url}/method")
            answers.append((after.status_code, b""))
            return answers

    assert run(main()) == [(204, b""), (304, b""), (200, b""), (200, b"")]

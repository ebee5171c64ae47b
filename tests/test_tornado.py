"""The Tornado adapter (`qactuar.contrib.tornado`) through the real server.

apps/tornado_app.py wraps a whole Application (`app`) and one RequestHandler
class (`lone_handler`); both are served by `python -m qactuar` in every
process model of the matrix and hit with httpx, raw sockets and curl.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from apps.lifespan_apps import EVENTS_VAR
from conftest import TESTS_DIR, ServerProcess, file_lines, read_response, wait_until
from matrix import MODELS, covers, start_app

FRAMEWORKS = ["tornado"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tornado") / "events.txt"


@pytest.fixture(scope="module", params=MODELS)
def server(request: pytest.FixtureRequest, events_file: Path) -> Iterator[ServerProcess]:
    process = start_app("apps.tornado_app:app", request.param,
                        env={EVENTS_VAR: str(events_file)})
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


@covers("routing", "json")
@pytest.mark.parametrize("method", METHODS)
def test_method_path_query_headers_and_body_reach_the_handler(client: httpx.Client,
                                                             method: str) -> None:
    body = b"" if method == "GET" else f"body of {method} ✓".encode()
    response = client.request(method, "/echo/some%20thing/deeper", params=[("q", "1"),
                              ("q", "two words")], headers={"X-Custom": "value"}, content=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    seen = response.json()
    assert seen["method"] == method
    assert seen["path"] == "/echo/some%20thing/deeper"
    assert seen["rest"] == "some thing/deeper"  # Tornado unescapes path arguments itself
    assert seen["uri"] == "/echo/some%20thing/deeper?q=1&q=two+words"
    assert seen["query"] == {"q": ["1", "two words"]}
    assert seen["headers"] == {"X-Custom": "value"}
    assert seen["body"] == body.decode()
    assert seen["remote_ip"] == "127.0.0.1"
    assert seen["protocol"] == "http"
    assert seen["version"] == "HTTP/1.1"


def test_head_and_options(client: httpx.Client) -> None:
    get = client.get("/echo/x")
    head = client.head("/echo/x")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-head"] == "yes"
    # The length of the body HEAD would have had ("HEAD" echoed where GET says "GET").
    assert int(head.headers["content-length"]) == len(get.content) + 1
    options = client.options("/echo/x")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, HEAD, POST, DELETE, PATCH, PUT, OPTIONS"
    assert options.content == b""


def test_head_sends_no_body_bytes(server: ServerProcess) -> None:
    """Checked on the wire (httpx never reads a HEAD body): the next response on the
    connection starts right after HEAD's head."""
    with server.connect() as sock:
        sock.settimeout(5)
        sock.sendall(b"HEAD /echo/x HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
        head, _, after = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\ncontent-length: " in head.lower()
        assert after == b""
        sock.sendall(b"GET /echo/y HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["rest"] == "y"


def test_a_method_tornado_does_not_support_is_405(client: httpx.Client) -> None:
    response = client.request("PROPFIND", "/echo/x")
    assert response.status_code == 405
    assert "405: Method Not Allowed" in response.text


def test_sync_and_async_handlers(client: httpx.Client) -> None:
    assert client.get("/echo/sync").json()["method"] == "GET"  # EchoHandler.get is sync
    response = client.get("/async")
    assert response.status_code == 200
    assert response.json()["async"] is True


def test_all_headers_reach_the_client(server: ServerProcess) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        raw = b""
        while b"headers set" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
    head = raw.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == "HTTP/1.1 200 OK"
    fields = [tuple(line.split(": ", 1)) for line in head[1:]]
    names = [name for name, _ in fields]
    assert ("content-type", "text/html; charset=UTF-8") in fields  # Tornado's default
    assert ("server", f"TornadoServer/{__import__('tornado').version}") in fields
    assert names.count("server") == 1 and names.count("date") == 1
    assert ("x-default", "from set_default_headers") in fields
    assert ("x-single", "one") in fields
    assert [value for name, value in fields if name == "x-multi"] == ["first", "second"]
    assert [value for name, value in fields if name == "set-cookie"] == [
        "session=abc123; HttpOnly; Path=/", "theme=dark; Path=/headers"]
    assert "x-removed" not in names
    assert ("content-length", "11") in fields
    assert "etag" in names


def test_cookies_round_trip(client: httpx.Client) -> None:
    response = client.get("/headers")
    assert response.cookies["session"] == "abc123"


@covers("streaming")
def test_flushed_chunks_are_a_streamed_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": "300"}) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(300))


def test_flushed_chunks_arrive_before_the_handler_finishes(server: ServerProcess,
                                                           events_file: Path) -> None:
    """The first flush() is on the wire while the handler still waits."""
    token = uuid.uuid4().hex
    with server.connect() as sock:
        sock.sendall(f"GET /wait/{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.settimeout(10)
        raw = b""
        while b"waiting\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"tornado closed {token}" not in file_lines(events_file)
    # The client left mid-response: the handler's on_connection_close runs.
    wait_until(lambda: f"tornado closed {token}" in file_lines(events_file),
               what="on_connection_close after the client left")


def test_a_streaming_handler_hears_the_client_leave_from_flush(server: ServerProcess,
                                                               events_file: Path) -> None:
    """The write that meets the gone client fails the handler's flush() with
    StreamClosedError, as on Tornado's server, instead of leaving it waiting forever."""
    token = uuid.uuid4().hex
    with server.connect() as sock:
        sock.sendall(f"GET /firehose/{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    wait_until(lambda: f"tornado firehose stopped {token}" in file_lines(events_file),
               what="StreamClosedError from flush() after the client left")


@pytest.mark.parametrize("model", MODELS)
def test_request_timeout_gives_up_the_handler(tmp_path: Path, model: str) -> None:
    """REQUEST_TIMEOUT cancels the ASGI call: 504, and the handler hears the connection close."""
    events = tmp_path / "events.txt"
    server = start_app("apps.tornado_app:app", model, "--request-timeout", "0.5",
                       env={EVENTS_VAR: str(events)})
    try:
        response = httpx.get(f"{server.url}/slow/abc", timeout=10)
        assert response.status_code == 504
        wait_until(lambda: "tornado slow closed abc" in file_lines(events),
                   what="on_connection_close after REQUEST_TIMEOUT")
        assert httpx.get(f"{server.url}/echo/x", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("path", ["/echo/x", "/async", "/stream?n=3"])
def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(
        server: ServerProcess, path: str) -> None:
    with server.connect() as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.shutdown(socket.SHUT_WR)
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 200 OK"
    if path.startswith("/stream"):
        assert body == b"line 0\nline 1\nline 2\n"
    else:
        assert json.loads(body)  # the handler's JSON, whole


@covers("form", "upload")
@pytest.mark.parametrize("size", [0, 10, 200 * 1024])
def test_multipart_form_and_files(client: httpx.Client, size: int) -> None:
    content = os.urandom(size)
    response = client.post("/form", data={"note": "a note ✓", "tag": ["a", "b"]},
                           files={"upload": ("data.bin", content, "application/x-test")})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "fields": {"note": ["a note ✓"], "tag": ["a", "b"]},
        "files": {"upload": [{"filename": "data.bin", "content_type": "application/x-test",
                              "size": size, "sha256": hashlib.sha256(content).hexdigest()}]},
    }


@covers("form")
def test_urlencoded_form(client: httpx.Client) -> None:
    response = client.post("/form", data={"a": "1", "b": "x y"})
    assert response.json() == {"fields": {"a": ["1"], "b": ["x y"]}, "files": {}}


def test_streamed_request_body_reaches_data_received(server: ServerProcess) -> None:
    parts = [os.urandom(50_000) for _ in range(6)]

    def body() -> Iterator[bytes]:
        yield from parts  # sent chunked, part by part

    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/upload-stream", content=body())
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["size"] == sum(map(len, parts))
    assert seen["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert seen["chunks"] >= 2  # streamed, not collected into one piece


def test_a_client_gone_mid_body_is_told_to_the_streaming_handler(
        server: ServerProcess, events_file: Path, client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    start = len(server.lines)
    with server.connect() as sock:
        sock.sendall(f"POST /upload-stream?token={token} HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: 100000\r\n\r\n".encode() + b"x" * 1000)
        wait_until(lambda: f"tornado upload started {token}" in file_lines(events_file),
                   what="the streaming handler's prepare()")
    wait_until(lambda: f"tornado upload closed {token}" in file_lines(events_file),
               what="on_connection_close after the client left mid-body")
    assert client.get("/echo/still-serving").status_code == 200
    assert "Traceback" not in "\n".join(server.lines[start:])


def test_a_handler_body_limit_answers_413(client: httpx.Client) -> None:
    response = client.put("/upload-stream", params={"limit": "1000"}, content=b"x" * 5000)
    assert response.status_code == 413
    assert "413: Payload Too Large" in response.text
    assert client.put("/upload-stream", params={"limit": "1000"},
                      content=b"x" * 1000).json()["size"] == 1000


@covers("errors")
@pytest.mark.parametrize(("path", "status", "reason"), [
    ("/error/crash", 500, "Internal Server Error"),
    ("/error/http/403", 403, "Forbidden"),
    ("/error/http/503", 503, "Service Unavailable"),
    ("/no/such/route", 404, "Not Found"),
])
def test_errors_become_tornados_error_page(client: httpx.Client, path: str, status: int,
                                           reason: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.text == (f"<html><title>{status}: {reason}</title>"
                             f"<body>{status}: {reason}</body></html>")


def test_a_crash_is_logged_with_its_traceback_and_the_server_lives_on(
        server: ServerProcess, client: httpx.Client) -> None:
    start = len(server.lines)
    assert client.get("/error/crash").status_code == 500
    server.wait_for_log(r"ValueError: the handler crashed on purpose", start=start)
    assert client.get("/echo/after").status_code == 200


def test_write_error_override(client: httpx.Client) -> None:
    response = client.get("/error/custom")
    assert response.status_code == 418
    assert response.json() == {"error": 418, "reason": "I'm a teapot"}


@covers("file", "static")
def test_static_file_handler(client: httpx.Client) -> None:
    source = (TESTS_DIR / "apps" / "tornado_app.py").read_bytes()
    response = client.get("/files/tornado_app.py")
    assert response.status_code == 200
    assert response.content == source
    assert response.headers["etag"]
    partial = client.get("/files/tornado_app.py", headers={"Range": "bytes=5-24"})
    assert partial.status_code == 206
    assert partial.content == source[5:25]
    again = client.get("/files/tornado_app.py",
                       headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""



@pytest.mark.parametrize("target", ["/files/../conftest.py", "/files/..%2Fconftest.py",
                                    "/files/%2E%2E/conftest.py"])
def test_static_file_handler_refuses_to_leave_its_directory(server: ServerProcess,
                                                            target: str) -> None:
    # A raw socket: httpx would remove the dot segment and ask for /conftest.py.
    with server.connect() as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 403 Forbidden"  # StaticFileHandler's own refusal
    assert body == b"<html><title>403: Forbidden</title><body>403: Forbidden</body></html>"


def test_redirect_and_reverse_url(client: httpx.Client) -> None:
    response = client.get("/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/echo/target"


def test_an_invalid_host_is_400_before_tornado(server: ServerProcess) -> None:
    """The server refuses an invalid Host itself (RFC 9112 3.2), for every app alike."""
    with server.connect() as sock:
        sock.sendall(b"GET /echo/x HTTP/1.1\r\nHost: bad host\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert body == b"Bad Request: invalid Host header\n"


def test_keep_alive_and_pipelining(server: ServerProcess) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /echo/one HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /echo/two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     b"GET /stream?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second, third = (read_response(sock) for _ in range(3))
    assert json.loads(first[2])["rest"] == "one"
    assert json.loads(second[2])["body"] == "abc"
    assert third[2] == b"line 0\nline 1\n"


def test_curl_as_a_client(server: ServerProcess) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is not installed"
    result = subprocess.run([curl, "--silent", "--show-error", "--max-time", "20",
                             "-X", "DELETE", f"{server.url}/echo/by-curl"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "DELETE"


@covers("root_path")
@pytest.mark.parametrize("model", MODELS)
def test_mounted_under_an_apps_prefix(tmp_path: Path, model: str) -> None:
    """Routes match below the prefix; `uri` stays the full target the client sent."""
    config = tmp_path / "apps.json"
    config.write_text(json.dumps({"APPS": {"/tornado": "apps.tornado_app:app",
                                           "/lone": "apps.tornado_app:lone_handler"}}))
    server = start_app("", model, env={"QACTUAR_CONFIG": str(config)})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/tornado/scope?a=1").json() == {
                "root_path": "/tornado", "path": "/scope", "uri": "/tornado/scope?a=1"}
            echo = http.get("/tornado/echo/x%2Fy")
            assert echo.json()["path"] == "/echo/x%2Fy"
            assert echo.json()["rest"] == "x/y"
            assert http.get("/tornado/echo/x").json()["uri"] == "/tornado/echo/x"
            assert http.get("/tornado/nothing").status_code == 404
            assert http.get("/lone/any/path").json() == {
                "greeting": "hello from a lone handler", "path": "/any/path"}
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("model", MODELS)
def test_behind_a_proxy_that_strips_root_path(model: str) -> None:
    """ROOT_PATH: raw_path lacks the prefix; routes still see the encoded path below it."""
    server = start_app("apps.tornado_app:app", model, "--root-path", "/proxied")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            echo = http.get("/echo/x%2Fy?a=1").json()
            assert (echo["path"], echo["rest"]) == ("/echo/x%2Fy", "x/y")
            assert echo["uri"] == "/proxied/echo/x%2Fy?a=1"
            assert http.get("/scope").json()["root_path"] == "/proxied"
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("model", MODELS)
def test_a_lone_request_handler_serves_every_path(model: str) -> None:
    server = start_app("apps.tornado_app:lone_handler", model, "--lifespan", "on")
    try:
        for path in ("/", "/a/b?c=d"):
            response = httpx.get(f"{server.url}{path}", timeout=10)
            assert response.json() == {"greeting": "hello from a lone handler",
                                       "path": path.split("?")[0]}
    finally:
        assert server.stop() == 0, server.output


def test_a_websocket_request_is_refused_with_403(server: ServerProcess,
                                                client: httpx.Client) -> None:
    """WebSocketHandler cannot run on ASGI (a documented limit): the handshake is refused."""
    start = len(server.lines)

    async def handshake() -> None:
        async with websockets.connect(f"ws://{server.host}:{server.port}/echo/ws"):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(asyncio.wait_for(handshake(), 10))
    assert refused.value.response.status_code == 403
    assert client.get("/echo/after-ws").status_code == 200
    assert "Traceback" not in "\n".join(server.lines[start:])


def test_the_wrapper_refuses_what_it_cannot_serve() -> None:
    from tornado.web import Application, RequestHandler

    from qactuar.contrib.tornado import TornadoApp
    with pytest.raises(TypeError, match="RequestHandler subclass"):
        TornadoApp(object)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an Application has its own"):
        TornadoApp(Application(), debug=True)
    assert TornadoApp(RequestHandler).application.wildcard_router.rules

"""The aquests module interface (qactuar.client.aquests) against a real Qactuar server
(tests/apps/aquests_app.py) and, for broken answers, small raw-socket servers."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qactuar.client.aquests as aquests_module
from conftest import ServerProcess, write_tls_files
from qactuar import client as aquests
from qactuar.client.aquests_response import AquestsRequest, AquestsResponse, HeaderDict
from qactuar.client.errors import ClientError


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tls_files(tmp_path_factory.mktemp("aquests-tls"))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tls_server(tls_files: dict[str, Path]) -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0",
                             "--ssl-cert-path", str(tls_files["cert"]),
                             "--ssl-key-path", str(tls_files["key"])])
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts a new aquests session (the module keeps one per process)."""
    monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())


class Collected(list):  # type: ignore[type-arg]
    """A callback that keeps every response, in the order the callbacks ran."""

    def __call__(self, response: Any) -> None:
        self.append(response)

    def by_id(self) -> list[Any]:
        return sorted(self, key=lambda response: response.meta["req_id"])


def fetch_one(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Queue one request with `call`, run it, return its response."""
    got = Collected()
    call(*args, callback=got, **kwargs)
    aquests.fetchall()
    assert len(got) == 1
    return got[0]


def echo(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.reason)
    return response.data


# -- the request families -----------------------------------------------------------------


def test_default_line_is_printed_per_response(server: ServerProcess,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    aquests.get(f"{server.url}/")
    aquests.get(f"{server.url}/status/404")
    aquests.fetchall()
    assert capsys.readouterr().out.splitlines() == [
        "REQID 0. HTTP/1.1 200 OK 4210 bytes received",
        "REQID 1. HTTP/1.1 404 Not Found 0 bytes received",
    ]


def test_get_like_methods_put_params_in_the_query(server: ServerProcess) -> None:
    calls = [(aquests.get, {"q": "a b", "n": 1}), (aquests.delete, "x=1"),
             (aquests.options, {"o": "p"}), (aquests.trace, None)]
    got = Collected()
    for call, params in calls:
        call(f"{server.url}/echo", params, callback=got)
    aquests.head(f"{server.url}/echo", callback=got)
    aquests.fetchall()
    shown = [(r.meta["req_method"], r.status_code,
              r.data["method"] if r.data else None, r.data["query"] if r.data else None)
             for r in got.by_id()]
    assert shown == [("get", 200, "GET", "q=a%20b&n=1"), ("delete", 200, "DELETE", "x=1"),
                     ("options", 200, "OPTIONS", "o=p"), ("trace", 200, "TRACE", ""),
                     ("head", 200, None, None)]
    assert got.by_id()[-1].content == b""  # HEAD: no body, whatever the length says


def test_post_put_patch_bodies_by_family(server: ServerProcess) -> None:
    url = f"{server.url}/echo"
    form = {"author": "James Milton", "n": 1}
    calls = [
        (aquests.post, form, None),
        (aquests.post, form, {"Content-Type": "application/json"}),
        (aquests.post, "raw text", {"Content-Type": "text/plain"}),
        (aquests.put, form, None),
        (aquests.patch, b"\x00bytes", None),
        (aquests.postjson, form, None),
        (aquests.putjson, [1, 2], None),
        (aquests.patchjson, form, None),
        (aquests.postxml, "<a>1</a>", None),
        (aquests.putxml, b"<b/>", None),
        (aquests.patchxml, "<c/>", None),
        (aquests.postform, form, None),
        (aquests.putform, form, None),
        (aquests.patchform, form, None),
        (aquests.postnvp, {"k": "vé"}, None),
    ]
    got = Collected()
    for call, params, headers in calls:
        call(url, params, headers, callback=got)
    aquests.fetchall()
    seen = [(r.meta["req_method"], echo(r)["method"], echo(r)["content_type"], echo(r)["body"])
            for r in got.by_id()]
    form_body = "author=James%20Milton&n=1"
    json_body = '{"author": "James Milton", "n": 1}'
    assert seen == [
        ("post", "POST", "application/x-www-form-urlencoded", form_body),
        ("post", "POST", "application/json", json_body),
        ("post", "POST", "text/plain", "raw text"),
        ("put", "PUT", "application/x-www-form-urlencoded", form_body),
        ("patch", "PATCH", None, "\x00bytes"),
        ("postjson", "POST", "application/json", json_body),
        ("putjson", "PUT", "application/json", "[1, 2]"),
        ("patchjson", "PATCH", "application/json", json_body),
        ("postxml", "POST", "text/xml", "<a>1</a>"),
        ("putxml", "PUT", "text/xml", "<b/>"),
        ("patchxml", "PATCH", "text/xml", "<c/>"),
        ("postform", "POST", "application/x-www-form-urlencoded", form_body),
        ("putform", "PUT", "application/x-www-form-urlencoded", form_body),
        ("patchform", "PATCH", "application/x-www-form-urlencoded", form_body),
        ("postnvp", "POST", "text/namevalue", "k[3]=vÃ©"),
    ]
    first = got.by_id()[0]
    assert first.request.payload == form_body.encode()
    assert first.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.request.method == first.method == "POST"


def test_bodies_that_cannot_be_encoded_fail_at_the_call(server: ServerProcess) -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        aquests.postxml(f"{server.url}/echo", {"not": "xml"})
    with pytest.raises(TypeError, match="upload"):
        aquests.upload(f"{server.url}/echo", "not a dict")
    with pytest.raises(ValueError, match="absolute"):
        aquests.get("/relative")
    assert aquests.qsize() == 0


def test_getjson_and_getxml_ask_for_their_type(server: ServerProcess) -> None:
    got = Collected()
    aquests.getjson(f"{server.url}/echo", callback=got)
    aquests.deletejson(f"{server.url}/echo", callback=got)
    aquests.getxml(f"{server.url}/xml", callback=got)
    aquests.deletexml(f"{server.url}/echo", callback=got)  # JSON answer: refused
    aquests.fetchall()
    first, second, xml, refused = got.by_id()
    assert ["accept", "application/json"] in echo(first)["headers"]
    assert echo(second)["method"] == "DELETE"
    assert (xml.status_code, xml.content) == (200, b"<hello>world</hello>")
    assert refused.status_code == 718


def test_upload_sends_fields_and_files(server: ServerProcess, tmp_path: Path) -> None:
    picture = tmp_path / "mycar.jpg"
    picture.write_bytes(b"\xff\xd8jpeg-bytes")
    with picture.open("rb") as file:
        response = fetch_one(aquests.upload, f"{server.url}/echo",
                             {"author": "James Milton", "file": file})
    shown = echo(response)
    assert shown["content_type"].startswith("multipart/form-data; boundary=")
    assert 'name="author"\r\n\r\nJames Milton' in shown["body"]
    assert 'name="file"; filename="mycar.jpg"' in shown["body"]
    assert "\xff\xd8jpeg-bytes" in shown["body"]
    assert response.meta["req_method"] == "upload"


# -- callbacks, meta, scheduling ----------------------------------------------------------


def test_callbacks_and_meta(server: ServerProcess) -> None:
    default = Collected()
    own = Collected()
    shared_meta = {"job_name": "test1"}
    aquests.configure(workers=10, callback=default)
    aquests.get(f"{server.url}/", meta=shared_meta)
    shared_meta["job_name"] = "test2"
    aquests.get(f"{server.url}/", meta=shared_meta)
    aquests.get(f"{server.url}/json", callback=own)
    aquests.fetchall()
    assert sorted(r.meta["job_name"] for r in default) == ["test1", "test2"]
    assert sorted(r.meta["req_id"] for r in default) == [0, 1]
    assert {r.meta["req_method"] for r in default} == {"get"}
    assert "req_id" not in shared_meta  # the caller's dict is copied, not changed
    assert [(r.meta["req_id"], r.meta["req_callback"] is own, r.data) for r in own] == [
        (2, True, {"hello": "world"})]


def test_requests_queued_by_callbacks_run_in_the_same_fetchall(server: ServerProcess) -> None:
    state = {"queued": 0}
    limit = 30
    statuses = []

    def finish_request(response: Any) -> None:
        statuses.append(response.status_code)
        if state["queued"] < limit:
            aquests.get(f"{server.url}/")
            state["queued"] += 1

    aquests.configure(3, callback=finish_request)
    for _ in range(3):
        aquests.get(f"{server.url}/")
        state["queued"] += 1
    aquests.fetchall()
    assert statuses == [200] * limit
    assert aquests.countreq() == aquests.countfin() == aquests.result.tasks == limit
    assert aquests.result.statuses == {200: limit}


def test_workers_is_the_number_of_requests_in_flight(server: ServerProcess) -> None:
    # Each request waits (up to `wait`) for 3 to be inside the server at once.
    for workers, wait in ((1, 0.2), (3, 5)):
        got = Collected()
        aquests.configure(workers, callback=got)
        for _ in range(3):
            aquests.get(f"{server.url}/inflight?n=3&wait={wait}")
        aquests.fetchall()
        assert [r.content for r in got] == [str(workers).encode()] * 3


def test_http1_workers_are_connections(server: ServerProcess) -> None:
    got = Collected()
    aquests.configure(2, callback=got)
    for _ in range(8):
        aquests.get(f"{server.url}/echo")
    aquests.fetchall()
    assert len({echo(r)["client_port"] for r in got}) == 2


def test_use_pool_false_opens_a_connection_per_request(server: ServerProcess) -> None:
    got = Collected()
    aquests.configure(1, callback=got, use_pool=False)
    for _ in range(4):
        aquests.get(f"{server.url}/echo")
    aquests.fetchall()
    assert len({echo(r)["client_port"] for r in got}) == 4


def test_http2_constreams_multiplexes_one_connection(tls_server: ServerProcess,
                                                     tls_files: dict[str, Path]) -> None:
    got = Collected()
    aquests.configure(1, callback=got, http2_constreams=4, verify=str(tls_files["ca"]))
    for _ in range(4):
        aquests.get(f"{tls_server.url}/inflight?n=4&wait=5")
    aquests.get(f"{tls_server.url}/echo")
    aquests.fetchall()
    assert sorted(r.content for r in got)[:4] == [b"4"] * 4
    assert {r.version for r in got} == {"2.0"}
    assert echo(got.by_id()[-1])["http_version"] == "2"


def test_force_http1_over_tls(tls_server: ServerProcess, tls_files: dict[str, Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    aquests.configure(force_http1=True, verify=str(tls_files["ca"]))
    aquests.get(f"{tls_server.url}/")
    aquests.fetchall()
    aquests.configure(verify=str(tls_files["ca"]))
    aquests.get(f"{tls_server.url}/")
    aquests.fetchall()
    assert capsys.readouterr().out.splitlines() == [
        "REQID 0. HTTP/1.1 200 OK 4210 bytes received",
        "REQID 1. HTTP/2.0 200 OK 4210 bytes received",
    ]


def test_qrandom_answers_every_request(server: ServerProcess) -> None:
    got = Collected()
    aquests.configure(2, callback=got, qrandom=True)
    for page in range(20):
        aquests.get(f"{server.url}/echo", {"page": page})
    aquests.fetchall()
    assert sorted(int(echo(r)["query"].split("=")[1]) for r in got) == list(range(20))


def test_fetchall_with_nothing_queued_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    aquests.fetchall()
    assert capsys.readouterr().out == "no item in queue.\n"


def test_fetchall_refuses_to_run_inside_an_event_loop(server: ServerProcess) -> None:
    aquests.get(f"{server.url}/")

    async def inside() -> None:
        aquests.fetchall()

    with pytest.raises(RuntimeError, match="own event loop"):
        asyncio.run(inside())


def test_a_failing_callback_is_logged_and_the_rest_still_run(server: ServerProcess) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.lines: list[tuple[str, str]] = []

        def log(self, msg: str, type: str = "info") -> None:
            self.lines.append((type, msg))

        def trace(self) -> None:
            import sys

            self.lines.append(("expt", repr(sys.exc_info()[1])))

    recorder = Recorder()
    seen = []

    def callback(response: Any) -> None:
        seen.append(response.meta["req_id"])
        if response.meta["req_id"] == 0:
            raise ValueError("a bug in the callback")

    aquests.configure(1, logger=recorder, callback=callback)
    aquests.get(f"{server.url}/")
    aquests.get(f"{server.url}/")
    aquests.fetchall()
    assert seen == [0, 1]
    assert recorder.lines == [("expt", "ValueError('a bug in the callback')")]


def test_configure_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="system resolver"):
        aquests.configure(dns=["8.8.8.8"])
    for bad in ({"workers": 0}, {"http2_constreams": 0}, {"timeout": -1}):
        with pytest.raises(ValueError, match="configure"):
            aquests.configure(**bad)
    aquests.configure(dns=[])  # the README's default is accepted


def test_xmlrpc_stub(server: ServerProcess) -> None:
    got = Collected()
    aquests.configure(callback=got)
    stub = aquests.rpc(f"{server.url}/rpc", meta={"job": "rpc"})
    stub.package_releases("roundup")
    stub.add(2, 3)
    stub.no.such.method(1)
    aquests.rpc(f"{server.url}/rpc-auth", auth=("user", "secret")).get_prime_number_gt(10000)
    aquests.rpc(f"{server.url}/rpc-auth").add(1, 1)  # no credentials: the 401
    aquests.fetchall()
    releases, added, fault, prime, refused = got.by_id()
    assert (releases.data, added.data, prime.data) == (["1.5.1"], 5, 10007)
    assert releases.meta["req_method"] == "rpc" and releases.meta["job"] == "rpc"
    assert b"<methodName>package_releases</methodName>" in releases.request.payload
    assert releases.request.headers["content-type"] == "text/xml"
    assert type(fault.data).__name__ == "Fault" and "no method no.such.method" in str(
        fault.data)
    assert (refused.status_code, refused.data) == (401, b"who are you?")


# jsonrpc(), grpc() and the database stubs: tests/test_client_backends*.py.


def test_tracking_logs_memory(server: ServerProcess) -> None:
    lines: list[tuple[str, str]] = []

    class Recorder:
        def log(self, msg: str, type: str = "info") -> None:
            lines.append((type, msg))

        def trace(self) -> None:
            raise AssertionError("no exception expected")

    aquests.configure(logger=Recorder(), tracking=True, callback=lambda response: None)
    aquests.get(f"{server.url}/")
    aquests.fetchall()
    assert lines and lines[0][0] == "memory" and "kB" in lines[0][1]


# -- the response -------------------------------------------------------------------------


def test_response_attributes(server: ServerProcess) -> None:
    response = fetch_one(aquests.get, f"{server.url}/", headers={"X-Asked": "yes"})
    assert (response.status_code, response.reason, response.version) == (200, "OK", "1.1")
    assert response.url == f"{server.url}/"
    assert response.headers["Content-Type"] == response.headers["content-type"]
    assert response.get_header("CONTENT-LENGTH") == "4210"
    assert response.get_header("x-missing", "none") == "none"
    assert response.get_header_with_attr("content-type") == ("text/html",
                                                             {"charset": "utf-8"})
    assert response.get_header_with_attr("x-missing") == (None, {})
    assert response.encoding == "utf-8"
    assert response.text.startswith("<!doctype html>") and len(response.content) == 4210
    assert response.data == response.content  # not JSON: the bytes
    raw = response.raw
    assert isinstance(raw, io.BytesIO) and raw.readline().startswith(b"<!doctype")
    assert response.request.headers["x-asked"] == "yes"
    assert response.request.payload is None
    assert response.history == [] and response.error is None
    assert response.opcode is None
    response.raise_for_status()
    response.reraise()
    assert repr(response) == "<Response [200]>"

    as_json = fetch_one(aquests.get, f"{server.url}/json")
    assert as_json.data == as_json.json() == {"hello": "world"}


def test_raise_for_status_on_4xx() -> None:
    response = AquestsResponse({}, AquestsRequest("GET", "http://x/", HeaderDict(), None),
                               status_code=404, reason="Not Found")
    with pytest.raises(aquests.ResponseError, match="404 Not Found") as raised:
        response.raise_for_status()
    assert raised.value.status_code == 404


def test_redirects_history_and_allow_redirects(server: ServerProcess) -> None:
    followed = fetch_one(aquests.get, f"{server.url}/moved")
    assert [repr(r) for r in followed.history] == ["<Response [301]>", "<Response [302]>"]
    assert (followed.status_code, followed.url) == (200, f"{server.url}/")
    aquests.configure(allow_redirects=False)
    stopped = fetch_one(aquests.get, f"{server.url}/moved")
    assert (stopped.status_code, stopped.get_header("location"), stopped.history) == (
        301, "/found", [])


def test_cookies_are_kept_for_the_session_when_enabled(server: ServerProcess) -> None:
    def run_pair() -> tuple[Any, Any]:
        got = Collected()

        def then_ask(response: Any) -> None:
            got.append(response)
            aquests.get(f"{server.url}/cookies", callback=got)

        aquests.get(f"{server.url}/set-cookie?session=abc&theme=dark", callback=then_ask)
        aquests.fetchall()
        return got[0], got[1]

    aquests.configure(cookie=True)
    setter, asker = run_pair()
    assert setter.cookies == {"session": "abc", "theme": "dark"}
    assert asker.data == "session=abc; theme=dark"
    aquests.get(f"{server.url}/cookies", callback=Collected())
    later = fetch_one(aquests.get, f"{server.url}/cookies")  # the next fetchall keeps them
    assert later.data == "session=abc; theme=dark"

    later.set_cookie("added", "by-hand")
    assert (later.get_cookie("added"), later.get_cookie("session")) == ("by-hand", "abc")
    assert later.get_cookie("missing") is None
    assert fetch_one(aquests.get, f"{server.url}/cookies").data == (
        "session=abc; theme=dark; added=by-hand")

    aquests.configure(cookie=False)
    setter, asker = run_pair()
    assert setter.cookies == {"session": "abc", "theme": "dark"}  # what it set
    assert asker.data is None
    with pytest.raises(RuntimeError, match="cookie=True"):
        setter.set_cookie("a", "b")


@pytest.mark.parametrize(("path", "auth", "status"), [
    ("/basic", ("user", "secret"), 200), ("/basic", ("user", "wrong"), 401),
    ("/basic", "user:secret", 200), ("/digest", ("user", "secret"), 200),
    ("/digest", ("user", "wrong"), 401), ("/bearer", ("token-1",), 200),
    ("/bearer", ("token-2",), 401), ("/basic", None, 401),
])
def test_auth(server: ServerProcess, path: str, auth: Any, status: int) -> None:
    assert fetch_one(aquests.get, f"{server.url}{path}", auth=auth).status_code == status


# -- failures as 7xx codes ----------------------------------------------------------------


def failed(response: Any, code: int) -> ClientError:
    """Check the shape of a failed request's response; return its error."""
    assert response.status_code == code, (response.status_code, response.reason)
    assert response.reason == aquests.CODES[code][0]
    empty = (-1, None) if response.meta["req_method"] in ("ws", "wss") else b""
    assert (response.content, response.data, response.text) == (empty, None, "")
    assert isinstance(response.error, ClientError) and response.error.code == code
    with pytest.raises(ClientError) as raised:
        response.raise_for_status()
    assert raised.value is response.error
    return response.error


def test_702_timeout(server: ServerProcess) -> None:
    aquests.configure(timeout=0.3)
    failed(fetch_one(aquests.get, f"{server.url}/sleep?s=3"), 702)


def test_704_unresolvable_host() -> None:
    failed(fetch_one(aquests.get, "http://no-such-host.invalid/"), 704)


def test_714_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: refused
        failed(fetch_one(aquests.get, f"http://127.0.0.1:{probe.getsockname()[1]}/"), 714)


def test_713_untrusted_certificate(tls_server: ServerProcess) -> None:
    failed(fetch_one(aquests.get, f"{tls_server.url}/"), 713)


def test_711_redirect_loop(server: ServerProcess) -> None:
    failed(fetch_one(aquests.get, f"{server.url}/loop"), 711)


def test_718_unacceptable_type(server: ServerProcess) -> None:
    got = Collected()
    aquests.get(f"{server.url}/", headers={"Accept": "application/json"}, callback=got)
    aquests.get(f"{server.url}/", headers={"Accept": "text/*"}, callback=got)
    aquests.get(f"{server.url}/", headers={"Accept": "text/html;q=0, */*"}, callback=got)
    aquests.get(f"{server.url}/", headers={"Accept": "text/html;q=0, application/json"},
                callback=got)
    aquests.fetchall()
    refused, wildcard, zero_q, zero_q_only = got.by_id()
    failed(refused, 718)
    assert "text/html" in str(refused.error)
    assert wildcard.status_code == 200
    assert zero_q.status_code == 200  # */* still takes it
    failed(zero_q_only, 718)


def test_717_unreadable_content_type() -> None:
    raw = RawHTTPServer(b"HTTP/1.1 200 OK\r\nContent-Type: text plain\r\nContent-Length: 2"
                        b"\r\n\r\nok")
    try:
        got = Collected()
        aquests.get(raw.url, headers={"Accept": "text/*"}, callback=got)
        aquests.get(raw.url, callback=got)  # no Accept: nothing to check the type against
        aquests.fetchall()
        unreadable, unchecked = got.by_id()
    finally:
        raw.close()
    error = failed(unreadable, 717)
    assert "'text plain'" in str(error)
    assert (unchecked.status_code, unchecked.content) == (200, b"ok")


def test_validators_leave_an_empty_answer_alone(server: ServerProcess) -> None:
    aquests.configure(timeout=1)  # fail, not hang, if the answer never comes
    empty = fetch_one(aquests.deletejson, f"{server.url}/status/204")
    assert empty.status_code == 204  # no body, no type: nothing to refuse
    headless = fetch_one(aquests.head, f"{server.url}/sized?n=9000",
                         headers={"Accept-Content-Length": 100})
    assert headless.status_code == 719  # HEAD: the announced length is checked


def test_719_cap_on_an_empty_answer(server: ServerProcess) -> None:
    # A size cap streams the answer: the engine's stream() returns for a 204 too (it did
    # not before client commit f9f214c; CLIENT_CONTRACT.md, request 9).
    aquests.configure(timeout=1)  # fail, not hang, if the answer never comes
    empty = fetch_one(aquests.get, f"{server.url}/status/204",
                      headers={"Accept-Content-Length": 100})
    assert empty.status_code == 204


def test_719_too_large(server: ServerProcess) -> None:
    got = Collected()
    limit = {"Accept-Content-Length": 5000}
    aquests.get(f"{server.url}/sized?n=5001", headers=limit, callback=got)
    aquests.get(f"{server.url}/streamed?n=20000", headers=limit, callback=got)
    aquests.get(f"{server.url}/sized?n=5000", headers=limit, callback=got)
    aquests.get(f"{server.url}/streamed?n=5000", headers=limit, callback=got)
    aquests.get(f"{server.url}/echo", headers=limit, callback=got)
    aquests.fetchall()
    declared, streamed, at_limit, streamed_at_limit, shown = got.by_id()
    failed(declared, 719)
    failed(streamed, 719)
    assert (at_limit.status_code, len(at_limit.content)) == (200, 5000)
    assert (streamed_at_limit.status_code, len(streamed_at_limit.content)) == (200, 5000)
    # The validator is the client's: Accept-Content-Length is not sent.
    assert not any(name == "accept-content-length" for name, _ in echo(shown)["headers"])


class RawHTTPServer:
    """Answers every connection with the same bytes, then closes it."""

    def __init__(self, answer: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(self.answer)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(("answer", "code"), [
    (b"", 708),  # closed without a byte of answer
    (b"HTTP/1.1 abc Broken\r\n\r\n", 715),  # bad status line
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 707),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 700),  # closed mid-body
])
def test_broken_answers_get_their_code_and_the_next_request_works(
        server: ServerProcess, answer: bytes, code: int) -> None:
    raw = RawHTTPServer(answer)
    try:
        got = Collected()
        aquests.get(raw.url, callback=got)
        aquests.get(f"{server.url}/json", callback=got)
        aquests.fetchall()
        broken, fine = got.by_id()
        failed(broken, code)
        assert fine.data == {"hello": "world"}
    finally:
        raw.close()


# -- WebSocket ----------------------------------------------------------------------------


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def test_ws_messages_and_opcodes(server: ServerProcess) -> None:
    got = Collected()
    url = ws_url(server, "/websocket/echo")
    aquests.ws(url, "Hello World", callback=got)
    aquests.ws(url, (aquests.OPCODE_BINARY, b"Hello World"), callback=got)
    aquests.ws(url, (aquests.OPCODE_TEXT, b"as text"), callback=got)
    aquests.ws(url, b"\x01bytes", callback=got)
    aquests.ws(url, (aquests.OPCODE_PING, b"ping?"), callback=got)
    aquests.ws(url, (aquests.OPCODE_CLOSE, "bye"), callback=got)
    aquests.ws(ws_url(server, "/websocket/close"), "anyone?", callback=got)
    aquests.fetchall()
    shown = [(r.status_code, r.reason, r.opcode, r.content, r.data) for r in got.by_id()]
    assert shown == [
        (200, "OK", 1, (1, "Hello World"), "Hello World"),
        (200, "OK", 2, (2, b"Hello World"), b"Hello World"),
        (200, "OK", 1, (1, "as text"), "as text"),
        (200, "OK", 2, (2, b"\x01bytes"), b"\x01bytes"),
        (200, "OK", 10, (10, b"ping?"), b"ping?"),  # the pong
        (200, "OK", 8, (8, "bye"), "bye"),  # the server's close echoes ours
        (200, "OK", 8, (8, "go away"), "go away"),  # closed before answering
    ]
    assert got.by_id()[0].meta["req_method"] == "ws"


def test_ws_failures(server: ServerProcess) -> None:
    got = Collected()
    plain_http = RawHTTPServer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    aquests.configure(timeout=0.3, callback=got)
    aquests.ws(ws_url(server, "/websocket/silent"), "hello?")
    aquests.ws(ws_url(server, "/websocket/echo"), (aquests.OPCODE_PONG, b"beat"))
    aquests.ws(ws_url(server, "/websocket/deny"), "x")
    aquests.ws(plain_http.url.replace("http://", "ws://"), "x")  # 200 instead of 101
    aquests.ws("ws://no-such-host.invalid/", "x")
    try:
        aquests.fetchall()
    finally:
        plain_http.close()
    silent, pong, denied, plain, unresolved = got.by_id()
    assert (silent.status_code, silent.opcode, silent.data) == (702, -1, None)
    assert pong.status_code == 702  # a pong is not answered: nothing comes back
    assert (denied.status_code, denied.reason, denied.opcode) == (403, "Forbidden", -1)
    with pytest.raises(ClientError):
        denied.raise_for_status()
    failed(plain, 716)
    assert unresolved.status_code == 704


def test_ws_arguments_are_checked_at_the_call(server: ServerProcess) -> None:
    with pytest.raises(ValueError, match="OPCODE_CONTINUATION"):
        aquests.ws(ws_url(server, "/websocket/echo"), (aquests.OPCODE_CONTINUATION, b"x"))
    with pytest.raises(ValueError, match="ws:// or wss://"):
        aquests.ws(f"{server.url}/websocket/echo", "x")
    with pytest.raises(TypeError, match="message"):
        aquests.ws(ws_url(server, "/websocket/echo"), 42)
    assert aquests.qsize() == 0


def test_wss_and_ws_auth(tls_server: ServerProcess, tls_files: dict[str, Path]) -> None:
    aquests.configure(verify=str(tls_files["ca"]))
    url = f"wss://{tls_server.host}:{tls_server.port}/websocket/echo"
    response = fetch_one(aquests.ws, url, "Hello World", auth=("user", "secret"))
    # wss:// takes HTTP/2 (RFC 8441) where the server offers it, unless force_http1.
    assert (response.status_code, response.data, response.version) == (200, "Hello World",
                                                                        "2.0")
    aquests.configure(verify=str(tls_files["ca"]), force_http1=True)
    assert fetch_one(aquests.ws, url, "again").version == "1.1"
    assert aquests_module._ws_authorization(("token-1",)) == "Bearer token-1"
    assert aquests_module._ws_authorization(("user", "secret")) == "Basic dXNlcjpzZWNyZXQ="


def test_results_are_json_serialisable_views(server: ServerProcess) -> None:
    response = fetch_one(aquests.getjson, f"{server.url}/echo", {"a": "1"})
    assert json.loads(response.text)["query"] == "a=1"


def test_the_default_line_escapes_the_servers_words(capsys: pytest.CaptureFixture[str]) -> None:
    raw = RawHTTPServer(b"HTTP/1.1 200 O\x1b[2JK\r\nContent-Length: 2\r\n\r\nhi")
    try:
        aquests.get(raw.url)
        aquests.fetchall()
    finally:
        raw.close()
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert out == "REQID 0. HTTP/1.1 200 O\\x1b[2JK 2 bytes received\n"

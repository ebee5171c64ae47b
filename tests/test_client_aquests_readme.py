"""The aquests README's examples, run against a local Qactuar server.

Each example below is copied from hansroh/aquests' README.rst (its code blocks,
dedented; trailing blanks dropped for ruff).  `adapt()` changes only what the issue allows: the
import lines (aquests -> qactuar.client) and the URLs (there is no internet
here: every URL points at tests/apps/aquests_app.py), plus the two file paths
the examples write to or read from (/tmp/mycar.jpg, /tmp/logs), which go to
the test's tmp_path.  Where an example could not run unchanged for another
reason, the test says so by name (the generator example's limit, the PUT
example's syntax error).  The examples run in this process, each in a new
aquests session; their printed output is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import qactuar.client.aquests as aquests_module
from conftest import ServerProcess, write_tls_files

QUICKSTART = '''
import aquests

aquests.get ("http://127.0.0.1:5000/")
aquests.fetchall ()
'''

MORE_PAGES = '''
for i in range (3):
  aquests.get ("http://127.0.0.1:5000/")
aquests.fetchall ()
'''

THREE_WORKERS = '''
aquests.configure (3)  # 3 workers
for i in range (3):
  aquests.get ("http://127.0.0.1:5000/")
aquests.fetchall ()
'''

HUNDRED_WORKERS = '''
aquests.configure (100) # 100 workers
for i in range (10000):
  aquests.get ("http://127.0.0.1:5000/")
aquests.fetchall ()
'''

BINDING_CALLBACK = '''
def finish_request (response):
  print (response.status_code)
  print (response.content)

aquests.configure (workers = 10, callback = finish_request)
for i in range (10):
  aquests.get ("http://127.0.0.1:5000/")
aquests.fetchall ()
'''

GENERATOR_STYLE = '''
numreq = 0
limit = 1000000
workers = 100

def finish_request (response):
  global numreq, limit
  if numreq < limit:
    aquests.get ("http://127.0.0.1:5000/")
    numreq += 1

aquests.configure (workers, callback = finish_request)
for i in range (workers):
  aquests.get ("http://127.0.0.1:5000/")
  numreq += 1
aquests.fetchall ()
'''

META = '''
def finish_request (response):
  print (response.meta ['req_id'])
  print (response.meta ['req_method'])
  print (response.meta ['job_name'])

aquests.configure (workers = 10, callback = finish_request)
aquests.get ("http://127.0.0.1:5000/", meta = {'job_name': 'test1'})
aquests.get ("http://127.0.0.1:5000/", meta = {'job_name': 'test2'})
'''

TIMEOUT = '''
aquests.configure (20, timeout = 10) # 10 seconds
aquests.get ("https://www.google.co.kr/?gfe_rd=cr&ei=3y14WPCTG4XR8gfSjoK4DQ")
aquests.fetchall ()
'''

VALIDATORS = '''
aquests.configure (20, timeout = 10) # 10 seconds
aquests.get (
  "https://www.google.co.kr/?gfe_rd=cr&ei=3y14WPCTG4XR8gfSjoK4DQ",
  headers = {
    "Accept": 'text/html',
    "Accept-Content-Length": 100000, # max 100Kb
  }
)
aquests.fetchall ()
'''

REDIRECTION = '''
def finish_request (response):
  print (response.history)

aquests.configure (callback = finish_request)
aquests.get ('http://pypi.python.org')
aquests.fetchall ()
'''

NO_REDIRECTS = '''
aquests.configure (callback = finish_request, allow_redirects = False)
'''

COOKIE = '''
def finish_request (response):
  print (response.cookies)

aquests.configure (20, callback = finish_request, cookie = True)
aquests.get ("https://www.google.co.kr/?gfe_rd=cr&ei=3y14WPCTG4XR8gfSjoK4DQ")
aquests.fetchall ()
'''

CHANGE_LOGGER = '''
from aquests.lib import logger

aquests.configure (
  workers = 10,
  logger = logger.file_logger ('/tmp/logs', 'aquests')
)
'''

CONFIGURATION = '''
import aquests

aquests.configure (
  workers = 1,
  logger = None,
  callback = None,
  timeout = 10,
  cookie = False,
  force_http1 = False,
  http2_constreams = 1,
  allow_redirects = True,
  qrandom = False,
\t\tuse_pool = True,
\t\tdns = [],
\t\ttracking = False\t\t
)
'''

GET_DELETE = '''
aquests.get ("http://127.0.0.1:5000/")
aquests.delete ("http://127.0.0.1:5000/models/ak-40")
aquests.get ("https://www.google.co.kr/search?q=aquests")
'''

POST = '''
aquests.post (
  "http://127.0.0.1:5000/",
  {'author': 'James Milton'},
  {'Content-Type': 'application/x-www-form-urlencoded'}
 )
'''

PUT = '''
aquest.put (
  "http://127.0.0.1:5000/users/jamesmilton",
  {'fullnamer': 'James Milton'},
  {'Content-Type': 'application/json'}
  )
)

# is equal to:

aquests.putjson (
  "http://127.0.0.1:5000/users/jamesmilton",
  {'fullnamer': 'James Milton'}
)
'''

UPLOAD = '''
aquests.upload (
  "http://127.0.0.1:5000/",
  {
    'author': 'James Milton',
    'file': open ('/tmp/mycar.jpg', 'rb')
  }
)
'''

WEBSOCKET = '''
aquests.ws ("ws://127.0.0.1:5000/websocket/echo", "Hello World")
# secure websocket channel, use wss
aquests.ws ("wss://127.0.0.1:5000/websocket/echo", "Hello World")
aquests.fetchall ()
'''

WEBSOCKET_OPCODE = '''
from aquests.protocols.ws import OPCODE_TEXT, OPCODE_BINARY

aquests.ws ("ws://127.0.0.1:5000/websocket/echo", (OPCODE_BINARY, b"Hello World"))
aquests.fetchall ()
'''

XMLRPC = '''
stub = aquests.rpc ("https://pypi.python.org/pypi")
stub.package_releases('roundup')
stub.prelease_urls('roundup', '1.4.10')
aquests.fetchall ()
'''

AUTHORIZATION = '''
stub = aquests.rpc (url, auth = (username, password))
stub.get_prime_number_gt (10000)
aquests.fetchall ()
'''

MIXED_DBO = '''
dbo = aquests.mongodb ("127.0.0.1:27017", "test_database")
aquests.configure (20)
for i in range (1000):
  aquests.get ("http://127.0.0.1:5000/")
  dbo.findone ("posts", {"author": "James Milton"})
aquests.fetchall ()
'''


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tls_files(tmp_path_factory.mktemp("readme-tls"))


@pytest.fixture(scope="module")
def servers(tls_ca: dict[str, Path]) -> Iterator[dict[str, ServerProcess]]:
    plain = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0"])
    tls = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0",
                         "--ssl-cert-path", str(tls_ca["cert"]),
                         "--ssl-key-path", str(tls_ca["key"])])
    yield {"plain": plain, "tls": tls}
    plain.stop()
    tls.stop()


@pytest.fixture
def run_example(servers: dict[str, ServerProcess], tls_ca: dict[str, Path], tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch):
    """Adapt an example (imports, URLs, /tmp paths) and run it in a new aquests session."""
    plain = f"127.0.0.1:{servers['plain'].port}"
    tls = f"127.0.0.1:{servers['tls'].port}"
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca["ca"]))  # the system CAs, for wss://
    monkeypatch.chdir(tmp_path)

    def adapt(code: str) -> str:
        code = re.sub(r"^import aquests$", "from qactuar import client as aquests", code,
                      flags=re.M)
        code = code.replace("from aquests.protocols.ws import",
                            "from qactuar.client.aquests import")
        code = code.replace("from aquests.lib import logger",
                            "from qactuar.client.aquests import logger")
        code = code.replace("https://www.google.co.kr/search?q=aquests",
                            f"http://{plain}/?q=aquests")
        code = code.replace("https://www.google.co.kr/", f"http://{plain}/")
        code = code.replace("http://pypi.python.org", f"http://{plain}/moved")
        code = code.replace("https://pypi.python.org/pypi", f"http://{plain}/rpc")
        code = code.replace("wss://127.0.0.1:5000", f"wss://{tls}")
        code = code.replace("127.0.0.1:5000", plain)
        return code.replace("/tmp/mycar.jpg", "mycar.jpg").replace("/tmp/logs", "logs")

    def run(*codes: str, namespace: dict | None = None) -> dict:
        monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())
        namespace = {} if namespace is None else namespace
        if "aquests" not in namespace:
            exec("from qactuar import client as aquests", namespace)
        for code in codes:
            exec(compile(adapt(code), "<aquests README example>", "exec"), namespace)
        return namespace

    run.adapt = adapt  # type: ignore[attr-defined]
    return run


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_quickstart(run_example, capsys) -> None:
    run_example(QUICKSTART)
    # aquests printed HTTP/2.0 here: it tried an h2c upgrade on http://; qactuar.client
    # offers HTTP/2 on https:// (ALPN) only: see the next test.
    assert lines(capsys) == ["REQID 0. HTTP/1.1 200 OK 4210 bytes received"]


def test_quickstart_over_https_is_http2(run_example, servers, capsys) -> None:
    run_example(QUICKSTART.replace("http://127.0.0.1:5000",
                                   f"https://127.0.0.1:{servers['tls'].port}"))
    assert lines(capsys) == ["REQID 0. HTTP/2.0 200 OK 4210 bytes received"]


def test_more_pages_and_workers(run_example, capsys) -> None:
    run_example(MORE_PAGES)
    assert lines(capsys) == [f"REQID {i}. HTTP/1.1 200 OK 4210 bytes received"
                             for i in range(3)]
    run_example(THREE_WORKERS)
    assert sorted(lines(capsys)) == [f"REQID {i}. HTTP/1.1 200 OK 4210 bytes received"
                                     for i in range(3)]


def test_hundred_workers_ten_thousand_requests(run_example, capsys) -> None:
    run_example(HUNDRED_WORKERS)
    printed = lines(capsys)
    assert len(printed) == 10000
    assert {line.split(". ", 1)[1] for line in printed} == {
        "HTTP/1.1 200 OK 4210 bytes received"}
    assert sorted(int(line.split(".")[0].split()[1]) for line in printed) == list(range(10000))


def test_binding_callback(run_example, capsys) -> None:
    run_example(BINDING_CALLBACK)
    printed = lines(capsys)
    assert printed[0::2] == ["200"] * 10
    assert all(line.startswith("b'<!doctype html>") for line in printed[1::2])


def test_generator_style_with_a_smaller_limit(run_example) -> None:
    # Changed: limit = 1000000 (a million requests) would not fit in a test run.
    example = GENERATOR_STYLE.replace("limit = 1000000", "limit = 1000")
    namespace = run_example(example)
    assert namespace["numreq"] == 1000
    assert namespace["aquests"].result.tasks == 1000
    assert namespace["aquests"].result.statuses == {200: 1000}


def test_meta(run_example, capsys) -> None:
    # As written, the example queues two requests and never calls fetchall(): nothing runs.
    namespace = run_example(META)
    assert lines(capsys) == []
    namespace["aquests"].fetchall()
    printed = lines(capsys)
    assert sorted(zip(printed[0::3], printed[1::3], printed[2::3], strict=True)) == [
        ("0", "get", "test1"), ("1", "get", "test2")]


def test_timeout_and_validators(run_example, capsys) -> None:
    run_example(TIMEOUT)
    assert lines(capsys) == ["REQID 0. HTTP/1.1 200 OK 4210 bytes received"]
    run_example(VALIDATORS)
    assert lines(capsys) == ["REQID 0. HTTP/1.1 200 OK 4210 bytes received"]


def test_redirection(run_example, capsys) -> None:
    namespace = run_example(REDIRECTION)
    assert lines(capsys) == ["[<Response [301]>, <Response [302]>]"]
    run_example(NO_REDIRECTS, namespace=namespace)
    namespace["aquests"].get(run_example.adapt("http://pypi.python.org"))
    namespace["aquests"].fetchall()
    assert lines(capsys) == ["[]"]


def test_cookie(run_example, capsys) -> None:
    run_example(COOKIE)
    assert lines(capsys) == ["{'visited': 'yes'}"]


def test_change_logger(run_example, tmp_path: Path) -> None:
    namespace = run_example(CHANGE_LOGGER)
    namespace["aquests"].fetchall()  # nothing queued: said through the new logger
    assert (tmp_path / "logs" / "aquests.log").read_text().endswith(
        "[info] no item in queue.\n")


def test_configuration_parameters(run_example) -> None:
    namespace = run_example(CONFIGURATION)
    assert namespace["aquests"].qsize() == 0


def test_request_examples_queue_without_running(run_example, tmp_path: Path) -> None:
    # These README blocks only queue requests (no fetchall()); run them, then fetch.
    (tmp_path / "mycar.jpg").write_bytes(b"\xff\xd8 a car")
    namespace = run_example(GET_DELETE, POST, UPLOAD)
    aquests = namespace["aquests"]
    assert aquests.qsize() == 5
    got = []
    aquests.configure(callback=got.append)
    aquests.fetchall()
    assert sorted((r.meta["req_method"], r.status_code) for r in got) == [
        ("delete", 200), ("get", 200), ("get", 200), ("post", 200), ("upload", 200)]


def test_put_example_is_not_valid_python(run_example) -> None:
    # The README's PUT block has a typo (`aquest.put`) and one `)` too many: it cannot
    # run with any library.  Its second half, putjson(), runs.
    with pytest.raises(SyntaxError):
        compile(run_example.adapt(PUT), "<README PUT example>", "exec")
    second_half = PUT.split("# is equal to:")[1]
    namespace = run_example(second_half)
    got = []
    namespace["aquests"].configure(callback=got.append)
    namespace["aquests"].fetchall()
    assert got[0].data["content_type"] == "application/json"
    assert got[0].data["body"] == '{"fullnamer": "James Milton"}'


def test_websocket_examples(run_example, capsys) -> None:
    run_example(WEBSOCKET)
    # wss:// opens the WebSocket on an HTTP/2 stream (RFC 8441) where the server offers it.
    assert sorted(lines(capsys)) == ["REQID 0. HTTP/1.1 200 OK 11 bytes received",
                                     "REQID 1. HTTP/2.0 200 OK 11 bytes received"]
    got = []
    namespace = run_example(WEBSOCKET_OPCODE.replace("aquests.fetchall ()", ""))
    namespace["aquests"].configure(callback=got.append)
    namespace["aquests"].fetchall()
    assert [(r.status_code, r.opcode, r.content) for r in got] == [
        (200, 2, (2, b"Hello World"))]


def test_xmlrpc_examples(run_example, servers, capsys) -> None:
    run_example(XMLRPC)
    printed = lines(capsys)
    assert [re.sub(r"\d+ bytes", "N bytes", line) for line in printed] == [
        "REQID 0. HTTP/1.1 200 OK N bytes received", "REQID 1. HTTP/1.1 200 OK N bytes received"]
    got = []
    namespace = run_example(XMLRPC.replace("aquests.fetchall ()", ""))
    namespace["aquests"].configure(callback=got.append)
    namespace["aquests"].fetchall()
    releases, fault = sorted(got, key=lambda response: response.meta["req_id"])
    # The README's output: ['1.5.1'] and <class 'xmlrpc.client.Fault'> <Fault 1:...>
    assert releases.data == ["1.5.1"]
    assert str(type(fault.data)) == "<class 'xmlrpc.client.Fault'>"
    assert repr(fault.data).startswith("<Fault 1:")
    # The Authorization example names its URL and credentials; they are given here.
    run_example(AUTHORIZATION, namespace={
        "url": f"http://127.0.0.1:{servers['plain'].port}/rpc-auth",
        "username": "user", "password": "secret"})
    assert [re.sub(r"\d+ bytes", "N bytes", line) for line in lines(capsys)] == [
        "REQID 0. HTTP/1.1 200 OK N bytes received"]



# The Mixed Requests example (MIXED_DBO), the gRPC and the database examples run against
# real servers in tests/test_client_backends.py and tests/test_client_backends_rpc.py.

"""The benchmark scenarios: which app, which measurement, how to check one answer.

A scenario is one entry in `SCENARIOS`. Its `kind` names the measurement in
`measure.MEASUREMENTS` ("wrk" load, "h2" HTTP/2 load with h2load, "ws"
WebSocket echo load, "memory", "startup"); a later scenario is one new entry
here, plus one new measurement kind if no existing one fits. Before any load, `verify` checks
one response's status and body with a plain client, so a server that answers
wrongly but fast cannot win. This module must not start processes.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks import apps, h2load, tls_cert, wrk
from benchmarks.process import ServerFailed
from benchmarks.servers import ONE_WORKER, Variant

ECHO_BODY_SIZE = 10240
WS_CONNECTIONS = 100
WS_SMALL_MESSAGE = 64
WS_LARGE_MESSAGE = 4096
# Qactuar and the peers the WebSocket and prefork scenarios compare it with.
MAIN_PEERS = frozenset({"qactuar", "uvicorn", "granian"})
# The peers that serve h2c on a plain port (uvicorn and daphne have no HTTP/2 there).
HTTP2_PEERS = frozenset({"qactuar", "hypercorn", "granian"})


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # "wrk", "h2", "ws", "memory" or "startup": a key of measure.MEASUREMENTS
    app: str  # "module:attr" every server imports
    verify: Callable[[int], None]
    post_body_size: int = 0  # wrk POSTs a body of this size (0: GET)
    # The servers the scenario is for (None: every server that does not skip it).
    servers: frozenset[str] | None = None
    variant: Variant = field(default=ONE_WORKER)
    # False: server and load tool both run on every CPU (several workers cannot
    # be pinned to one CPU); True: server on --server-cpu, load on --load-cpu.
    pinned: bool = True
    wrk_connections: int = wrk.CONNECTIONS
    wrk_timeout_seconds: int = 5
    wrk_headers: tuple[str, ...] = ()
    ws_connections: int = WS_CONNECTIONS  # "ws" kind: wsload connections
    ws_message_size: int = WS_SMALL_MESSAGE  # "ws" kind: bytes per text message
    # How the load differs from the run's header line (printed under the title).
    load_note: str = ""
    # The app's framework modules (installed from requirements.txt when missing).
    packages: tuple[str, ...] = ()
    # The metric the servers are compared by, when not the kind's own (report.HEADLINE).
    headline: str | None = None
    # "wrk" kind: the HTTP/1.1 load tool whatever --load-tool says (None: --load-tool's).
    load_tool: str | None = None


def _request(port: int, method: str = "GET", body: bytes | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, "/", body=body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _expect(name: str, port: int, expected: bytes, method: str = "GET",
            body: bytes | None = None) -> None:
    status, _, got = _request(port, method, body)
    if status != 200 or got != expected:
        raise ServerFailed(f"{name}: verification got status {status} and a {len(got)}-byte "
                           f"body {got[:40]!r}, expected 200 and {len(expected)} bytes "
                           f"{expected[:40]!r}")


def _verify_hello(port: int) -> None:
    _expect("hello", port, apps.HELLO_BODY)


def _verify_ten_kib(port: int) -> None:
    _expect("10 KiB", port, apps.TEN_KIB_BODY)


def _verify_echo(port: int) -> None:
    _expect("echo", port, b"x" * ECHO_BODY_SIZE, "POST", b"x" * ECHO_BODY_SIZE)


def _verify_static_file(port: int) -> None:
    _expect("static-file", port, apps.static_file_bytes())


def _verify_stream(port: int) -> None:
    _expect("stream", port, apps.STREAM_CHUNK * apps.STREAM_CHUNKS)


def _verify_json(name: str) -> Callable[[int], None]:
    """The check of a framework's JSON endpoint (the `name` scenario)."""
    def verify(port: int) -> None:
        status, headers, body = _request(port)
        if (status != 200 or json.loads(body or b"null") != apps.JSON_PAYLOAD
                or not headers.get("content-type", "").startswith("application/json")):
            raise ServerFailed(f"{name}: verification got status {status}, "
                               f"body {body[:60]!r}")
    return verify


def _ws_message(size: int) -> str:
    """A text message whose every byte is checked: a repeating, position-revealing pattern."""
    return ("0123456789abcdefghijklmnopqrstuvwxyz" * (size // 36 + 1))[:size]


def _verify_ws_echo(size: int) -> Callable[[int], None]:
    def verify(port: int) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        sent = _ws_message(size)
        try:
            with connect(f"ws://127.0.0.1:{port}/", open_timeout=10, close_timeout=5,
                         max_size=None) as websocket:
                websocket.send(sent)
                got = websocket.recv(timeout=10)
        except (OSError, TimeoutError, WebSocketException) as error:
            raise ServerFailed(f"ws-echo: verification failed: {error!r}") from error
        if got != sent:
            raise ServerFailed(f"ws-echo: verification sent a {size}-byte text message and "
                               f"got {type(got).__name__} {got[:40]!r} "
                               f"({len(got)} long)")
    return verify


def _h2_get(port: int, tls: bool = False) -> tuple[int, bytes]:
    """GET / over HTTP/2: with prior knowledge (the preface first, as h2load does), or
    over TLS where ALPN must have chosen h2."""
    import h2.config
    import h2.connection
    import h2.events

    connection = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [(":method", "GET"), (":scheme", "https" if tls else "http"),
                                     (":authority", f"127.0.0.1:{port}"), (":path", "/")],
                            end_stream=True)
    status, body = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = (tls_cert.client_context("h2").wrap_socket(raw, server_hostname="127.0.0.1")
                if tls else raw)
        if tls and sock.selected_alpn_protocol() != "h2":
            raise OSError(f"TLS ALPN chose {sock.selected_alpn_protocol()!r}, not 'h2'")
        while True:
            sock.sendall(connection.data_to_send())
            data = sock.recv(65536)
            if not data:
                raise OSError(f"connection closed before the answer ended ({body[:40]!r})")
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, body
                elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                    raise OSError(f"HTTP/2 {type(event).__name__}: {event}")


def _verify_h2_hello(port: int, tls: bool = False) -> None:
    """Hello world over HTTP/2: a server that answers the preface with HTTP/1.1 fails
    here, and over TLS one whose ALPN does not choose h2."""
    import h2.exceptions

    name = "h2-tls" if tls else "h2"
    try:
        status, body = _h2_get(port, tls)
    except (OSError, h2.exceptions.H2Error) as error:
        raise ServerFailed(f"{name}: verification over HTTP/2 failed: {error!r}") from error
    if status != 200 or body != apps.HELLO_BODY:
        raise ServerFailed(f"{name}: verification over HTTP/2 got status {status} and body "
                           f"{body[:40]!r}, expected 200 and {apps.HELLO_BODY!r}")


def _verify_h2_tls_hello(port: int) -> None:
    _verify_h2_hello(port, tls=True)


def _verify_hello_close(port: int) -> None:
    """Hello world, and the server closes the connection when asked to."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        closes = (response.getheader("connection") or "").lower() == "close"
    finally:
        connection.close()
    if response.status != 200 or body != apps.HELLO_BODY or not closes:
        raise ServerFailed(f"hello with Connection: close: got status {response.status}, "
                           f"body {body[:40]!r}, Connection: "
                           f"{response.getheader('connection')!r}")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("hello", "hello world (plain text)", "wrk", "benchmarks.apps:hello",
             _verify_hello),
    Scenario("10k", "10 KiB response", "wrk", "benchmarks.apps:ten_kib", _verify_ten_kib),
    Scenario("echo", "POST echo of 10 KiB", "wrk", "benchmarks.apps:echo", _verify_echo,
             post_body_size=ECHO_BODY_SIZE),
    Scenario("stream", "streamed 100 x 1 KiB", "wrk", "benchmarks.apps:stream",
             _verify_stream),
    Scenario("starlette", "Starlette JSON endpoint", "wrk", "benchmarks.starlette_app:app",
             _verify_json("starlette"), packages=("starlette",)),
    Scenario("fastapi", "FastAPI JSON endpoint", "wrk", "benchmarks.fastapi_app:app",
             _verify_json("fastapi"), packages=("fastapi",)),
    # Django's ASGIHandler (async view, a new project's default middleware).
    Scenario("django", "Django async view (JSON)", "wrk", "benchmarks.django_app:application",
             _verify_json("django"), packages=("django",)),
    # A 1 MiB file: pathsend (os.sendfile) where the server offers it, else one body.
    # The client's side can cost more than the server's here: the load tool copies
    # every byte out of the kernel, a sendfile server never touches them.  Under wrk
    # (one CPU) the tool was the limit: wrk at 100 % of its CPU, qactuar's server at
    # about a quarter of its own, so req/s compared wrk, not the servers.  qactuar
    # load reads a 1 MiB body with about a third of wrk's CPU, so it is the tool here
    # whatever --load-tool says, and the servers are the limit.  The figure of merit
    # is requests per second of the server's own CPU (the CPU a file costs the
    # server), steadier than req/s on a shared machine and not bound to who was the
    # limit; req/s is shown beside it.  Figures: docs/benchmarks.md, 2026-12-05.
    Scenario("static-file", "static file, 1 MiB (pathsend)", "wrk", "benchmarks.apps:static_file",
             _verify_static_file, servers=MAIN_PEERS, headline="requests_per_cpu_s",
             load_tool="qactuar",
             load_note="qactuar load -c64 (wrk on one CPU was the limit); compared by req "
                       "per server CPU-second, req/s beside it"),
    # Messages/s with 100 connections each echoing one message at a time.
    # wsload (C, epoll, one thread) runs on the load CPU; its own CPU % is reported
    # so that a run where it, not the server, was the limit shows as such.
    Scenario("ws-echo", "WebSocket echo, 100 conns x 64 B", "ws", "benchmarks.apps:ws_echo",
             _verify_ws_echo(WS_SMALL_MESSAGE), servers=MAIN_PEERS,
             variant=Variant(websocket=True),
             load_note="wsload 100 connections x 64 B, its own 1 s warm-up, pings off"),
    Scenario("ws-echo-4k", "WebSocket echo, 100 conns x 4 KiB", "ws",
             "benchmarks.apps:ws_echo", _verify_ws_echo(WS_LARGE_MESSAGE), servers=MAIN_PEERS,
             variant=Variant(websocket=True), ws_message_size=WS_LARGE_MESSAGE,
             load_note="wsload 100 connections x 4 KiB, its own 1 s warm-up, pings off"),
    # Two workers on a two-CPU machine: the workers cannot be pinned to one CPU
    # and wrk cannot have a CPU of its own, so the servers and wrk (-t2, one thread
    # per CPU) all run unpinned on every CPU, competing alike for all servers.
    # This measures what a 2-worker deployment serves on the whole machine with
    # the load generated on it; req/CPU-s (summed over the whole process tree) is
    # the per-core efficiency. On a machine with 4+ CPUs, --server-cpu 0-1
    # --load-cpu 2-3 style pinning would be cleaner; this scenario does not try.
    Scenario("prefork", "hello world, 2 workers (unpinned)", "wrk", "benchmarks.apps:hello",
             _verify_hello, servers=MAIN_PEERS, variant=Variant(workers=2), pinned=False,
             load_note="2 workers; servers and wrk (one thread per CPU) unpinned on every CPU"),
    # New connections/s: every request carries Connection: close, so each one is
    # a new TCP connection. Postfork forks a child per connection (about 8-10 ms
    # of the parent's time each on this machine), so wrk keeps only 8 connections
    # open (more would only queue in the backlog) and waits up to 30 s for an
    # answer, so that a connection queued behind forks is not counted as a
    # timeout error. qactuar's async model and uvicorn are the reference.
    Scenario("postfork-connect", "new connection per request (Connection: close)", "wrk",
             "benchmarks.apps:hello", _verify_hello_close,
             servers=frozenset({"qactuar-postfork", "qactuar", "uvicorn"}),
             wrk_connections=8, wrk_timeout_seconds=30, wrk_headers=("Connection: close",),
             load_note='wrk -c8 --timeout 30s -H "Connection: close"'),
    # HTTP/2 over cleartext (h2c, prior knowledge): h2load on the load CPU keeps
    # 16 connections x 10 concurrent streams busy; the server CPU and req/CPU-s as
    # for wrk. h2load reports no latency percentiles: mean and max instead.
    Scenario("h2", "HTTP/2 hello world, 16 conns x 10 streams", "h2", "benchmarks.apps:hello",
             _verify_h2_hello, servers=HTTP2_PEERS, variant=Variant(http2=True),
             load_note=f"h2load -c{h2load.CONNECTIONS} -m{h2load.STREAMS}, h2c prior knowledge; "
                       "uvicorn and daphne: no HTTP/2 (n/a)"),
    # The same over TLS: https with ALPN h2 (h2load offers h2), every server with the
    # run's own self-signed certificate (benchmarks/tls_cert.py); encryption is part
    # of what is measured, on both sides.
    Scenario("h2-tls", "HTTP/2 over TLS hello world, 16 conns x 10 streams", "h2",
             "benchmarks.apps:hello", _verify_h2_tls_hello, servers=HTTP2_PEERS,
             variant=Variant(http2=True, tls=True), packages=("trustme",),
             load_note=f"h2load -c{h2load.CONNECTIONS} -m{h2load.STREAMS}, https, ALPN h2, "
                       "a self-signed certificate made for the run"),
    Scenario("idle-memory", "memory per idle keep-alive connection", "memory",
             "benchmarks.apps:hello", _verify_hello),
    Scenario("startup", "process start to first answered request", "startup",
             "benchmarks.apps:hello", _verify_hello),
]}

QUICK_SCENARIOS = ["hello", "echo"]

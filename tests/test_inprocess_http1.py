"""HTTP/1.1 in process: the real protocol fed bytes through a fake transport (tests/inprocess.py).

The parser's and framer's edge cases, exactly and fast: every read is
delivered as given (or split into pieces), and what the server wrote and
whether it closed are read back without a socket in between.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Response, parse_responses
from inprocess import Connection, InProcessServer, serving
from qactuar._build import PURE_PYTHON_ENV_VAR, flag_is_set
from request_tables import (
    APP_MISTAKES,
    BAD_REQUESTS,
    EMPTY_BODIES,
    EMPTY_BODY_ANSWER,
    EXCHANGES,
    GOOD_THEN_BAD,
    HELLO,
    OVER_LIMITS,
    OVER_LIMITS_MID_REQUEST,
    PIPELINED,
    REFUSED_HEAD_REQUESTS,
    SMALL_LIMITS,
    UPGRADES_NOT_TAKEN,
    WITHIN_LIMITS,
    Answer,
    Step,
    app_mistake_request,
    check_app_mistake,
    check_refused_alone,
    check_refused_head,
    get,
    upgrade_with_body,
)


@pytest.fixture
def misbehaving() -> Iterator[InProcessServer]:
    with serving("apps.misbehaving:app") as server:
        yield server


def test_the_build_under_test_is_the_one_asked_for() -> None:
    """Compiled unless QACTUAR_PURE_PYTHON is set: both builds run this layer."""
    import qactuar.protocols.http1 as http1

    compiled = http1.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert compiled is not flag_is_set(PURE_PYTHON_ENV_VAR), http1.__file__


def test_a_request_is_answered_and_the_connection_kept(misbehaving: InProcessServer) -> None:
    connection = misbehaving.connect()
    answer = connection.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\nHello, world!")
    assert not connection.closed
    assert connection.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"Hello, world!")


def test_header_pairs_are_written_alike_first_seen_remembered_or_past_the_bound(
        misbehaving: InProcessServer) -> None:
    """The server remembers the header pairs it has checked, their lines and their
    Content-Length values, up to 1,024 each: a pair (a tuple or a list) is written
    the same the first time, once remembered, and past the bound (1,100 values)."""
    connection = misbehaving.connect()
    for number in [*range(1100), 0, 1099]:
        head, _, body = connection.send(get(f"/header-pairs?v={number}")).partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 200 OK"
        assert lines[1:4] == [b"x-tuple: yes", b"x-list: yes", b"x-value: %d" % number]
        assert b"content-length: 5" in lines and body == b"pairs"
    assert misbehaving.tracebacks() == []


def test_a_request_split_into_single_bytes_is_answered(misbehaving: InProcessServer) -> None:
    connection: Connection = misbehaving.connect()
    body = b"0123456789"
    answer = connection.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                             + body, pieces=1)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\n" + body)
    assert misbehaving.tracebacks() == []


# -- the shared tables (request_tables.py) ---------------------------------------------


def read_answers(connection: Connection, head_only: list[bool]) -> tuple[list[Response], bytes]:
    """Run until the server has written one response per item of `head_only` (or closed);
    return them and any bytes after them, once the server is idle."""
    def complete() -> bool:
        try:
            parse_responses(connection.unread(), head_only, connection.closed)
        except ConnectionError:
            return connection.closed
        return True

    connection.wait_for(complete, what=f"{len(head_only)} response(s)")
    return parse_responses(connection.read(), head_only, connection.closed)


def refused(server: InProcessServer, request: bytes, pieces: int = 0) -> tuple[
        list[Response], bytes]:
    """Send `request` with PIPELINED behind it in one read (or in reads of `pieces` bytes);
    the first answer and everything after it, once the server has closed."""
    connection = server.connect()
    connection.feed(request + PIPELINED, pieces)
    responses, rest = read_answers(connection, [False])
    rest += connection.read_until_closed()
    assert server.tracebacks() == []
    assert connection.transport.late_writes == b""
    return responses, rest


@pytest.mark.parametrize(("request_bytes", "status"), BAD_REQUESTS)
def test_bad_request_is_refused_and_nothing_after_it_is_read(
        misbehaving: InProcessServer, request_bytes: bytes, status: int) -> None:
    check_refused_alone(*refused(misbehaving, request_bytes), status)


@pytest.mark.parametrize(("request_bytes", "status"), BAD_REQUESTS)
def test_bad_request_in_single_byte_reads(misbehaving: InProcessServer, request_bytes: bytes,
                                          status: int) -> None:
    """The same refusal whichever read the bad byte arrives in."""
    check_refused_alone(*refused(misbehaving, request_bytes, pieces=1), status)


@pytest.mark.parametrize(("request_bytes", "status"), BAD_REQUESTS)
def test_a_refusal_is_logged_on_lines_of_its_own_without_a_traceback(
        misbehaving: InProcessServer, request_bytes: bytes, status: int) -> None:
    refused(misbehaving, request_bytes)
    lines = [record.getMessage() for record in misbehaving.log_records]
    assert any(line.startswith(f"{status} ") and "127.0.0.1:50000" in line
               for line in lines), lines
    assert all("\n" not in line and "\r" not in line for line in lines), lines
    assert misbehaving.tracebacks() == []


@pytest.mark.parametrize(("request_bytes", "status"), REFUSED_HEAD_REQUESTS)
def test_a_refused_head_request_gets_its_status_without_a_body(
        misbehaving: InProcessServer, request_bytes: bytes, status: int) -> None:
    connection = misbehaving.connect()
    connection.feed(request_bytes)
    check_refused_head(connection.read_until_closed(), status)


def test_bad_request_pipelined_after_a_good_one(misbehaving: InProcessServer) -> None:
    connection = misbehaving.connect()
    connection.feed(GOOD_THEN_BAD)
    [good, bad], rest = read_answers(connection, [False, False])
    Answer(200, b"slept").check(good)
    rest += connection.read_until_closed()
    check_refused_alone([bad], rest, 400)


@pytest.mark.parametrize(("path", "close", "outcome", "never_written"), APP_MISTAKES)
def test_an_app_mistake_is_a_500_or_an_abort_and_logged(
        misbehaving: InProcessServer, path: str, close: bool, outcome: str,
        never_written: tuple[bytes, ...]) -> None:
    connection = misbehaving.connect()
    connection.feed(app_mistake_request(path, close))
    check_app_mistake(connection.read_until_closed(), outcome, never_written)
    assert connection.transport.late_writes == b""
    assert any(path in record.getMessage() for record in misbehaving.log_records)
    # The server goes on: a new connection is answered.
    assert misbehaving.connect().send(get("/hello")).endswith(b"Hello, world!")


@pytest.fixture(scope="module")
def small_limits() -> Iterator[InProcessServer]:
    with serving("apps.misbehaving:app", **SMALL_LIMITS) as server:
        yield server


@pytest.mark.parametrize(("request_bytes", "status"), OVER_LIMITS)
def test_over_a_limit_is_refused_and_nothing_after_it_is_read(
        small_limits: InProcessServer, request_bytes: bytes, status: int) -> None:
    check_refused_alone(*refused(small_limits, request_bytes), status)


@pytest.mark.parametrize(("request_bytes", "status"), OVER_LIMITS_MID_REQUEST)
def test_over_a_limit_is_refused_before_the_request_ends(
        small_limits: InProcessServer, request_bytes: bytes, status: int) -> None:
    connection = small_limits.connect()
    connection.feed(request_bytes)
    responses, rest = read_answers(connection, [False])
    check_refused_alone(responses, rest + connection.read_until_closed(), status)


def test_a_request_refused_in_the_read_that_brought_it_never_runs_its_app() -> None:
    """A chunked body over MAX_BODY_SIZE in the same read as its head: the request
    is started when its head ends, but the 413 goes out before the app's first step
    would run (a Task not yet stepped on 3.11; on 3.12+ a start waiting for the loop
    pass's ready callback), and that app never runs; the next connection's does."""
    started: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: the server goes on without it
        started.append(scope["path"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    refused_request = (b"POST /refused HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"%x\r\n%s\r\n" % (1200, b"a" * 1200))
    with serving(app, **SMALL_LIMITS) as server:
        connection = server.connect()
        connection.feed(refused_request)
        responses, rest = read_answers(connection, [False])
        check_refused_alone(responses, rest + connection.read_until_closed(), 413)
        assert server.connect().send(get("/next")).endswith(b"\r\n\r\nok")
        assert started == ["/next"]
        assert server.tracebacks() == []


@pytest.mark.parametrize(("request_bytes", "body"), WITHIN_LIMITS)
def test_within_the_limits_is_served(small_limits: InProcessServer, request_bytes: bytes,
                                     body: bytes) -> None:
    connection = small_limits.connect()
    connection.feed(request_bytes)
    [response], rest = read_answers(connection, [False])
    Answer(200, body).check(response)
    assert rest == b""
    assert not connection.closed


@pytest.fixture(scope="module")
def basic() -> Iterator[InProcessServer]:
    with serving("apps.basic:app") as server:
        yield server


def run_exchange(connection: Connection, steps: tuple[Step, ...], closes: bool) -> None:
    for step in steps:
        connection.feed(step.request)
        responses, rest = read_answers(connection, [a.head_only for a in step.answers])
        for answer, response in zip(step.answers, responses, strict=True):
            answer.check(response)
        assert rest == b"", rest
    assert connection.closed is closes


@pytest.mark.parametrize(("steps", "closes"), EXCHANGES)
def test_exchange(basic: InProcessServer, steps: tuple[Step, ...], closes: bool) -> None:
    run_exchange(basic.connect(), steps, closes)


@pytest.mark.parametrize("pieces", [1, 7])
@pytest.mark.parametrize(("steps", "closes"), EXCHANGES)
def test_exchange_in_small_reads(basic: InProcessServer, steps: tuple[Step, ...],
                                 closes: bool, pieces: int) -> None:
    """The same answers whatever the client's bytes are split into."""
    connection = basic.connect()
    for step in steps:
        connection.feed(step.request, pieces)
        responses, rest = read_answers(connection, [a.head_only for a in step.answers])
        for answer, response in zip(step.answers, responses, strict=True):
            answer.check(response)
        assert rest == b"", rest
    assert connection.closed is closes


@pytest.mark.parametrize("request_bytes", EMPTY_BODIES)
def test_empty_body_is_one_final_message(basic: InProcessServer, request_bytes: bytes) -> None:
    run_exchange(basic.connect(), (Step(request_bytes, (EMPTY_BODY_ANSWER,)),
                                   Step(get("/hello"), (HELLO,))), closes=False)


@pytest.mark.parametrize("upgrade", UPGRADES_NOT_TAKEN)
def test_an_upgrade_not_taken_keeps_the_request_body(basic: InProcessServer,
                                                       upgrade: list[str]) -> None:
    connection = basic.connect()
    connection.feed(upgrade_with_body(upgrade))
    [response], _ = read_answers(connection, [False])
    Answer(200, b"hello world").check(response)


# -- the client half-closes ------------------------------------------------------------


def test_requests_before_a_half_close_are_answered_then_the_connection_closes(
        basic: InProcessServer) -> None:
    connection = basic.connect()
    connection.feed(get("/sleep?s=0.05") + get("/hello"))
    connection.feed_eof()
    [slept, hello], rest = read_answers(connection, [False, False])
    Answer(200, b"slept").check(slept)
    HELLO.check(hello)
    assert connection.read_until_closed() == rest == b""


def test_a_half_close_in_the_middle_of_a_body_is_not_answered(basic: InProcessServer) -> None:
    connection = basic.connect()
    connection.feed(get("/echo", "Content-Length: 10", method="POST", body=b"12345"))
    connection.feed_eof()
    assert connection.read_until_closed() == b""


# -- back-pressure, both ways -------------------------------------------------------------


def test_the_request_body_is_not_read_while_the_app_is_behind() -> None:
    """apps.h2_app's /hold reads its body only once /release is requested."""
    with serving("apps.h2_app:app", RECV_BYTES=65536) as server:
        connection = server.connect()
        total = 4 * 1024 * 1024
        connection.feed(get("/hold", f"Content-Length: {total}", method="POST")
                        + b"b" * total, pieces=65536)
        transport = connection.transport
        assert not transport.reading  # paused: the app has not read
        undelivered = sum(map(len, transport.inbox))
        assert undelivered >= total - 4 * 65536, undelivered  # at most a few reads taken
        assert server.connect().send(get("/release")).endswith(b"released")
        [response], rest = read_answers(connection, [False])
        Answer(200, b"%d" % total).check(response)
        assert rest == b""
        assert transport.reading and not transport.inbox


class Streamer:
    """An ASGI app that streams `parts` parts of 64 KiB; counts the sends that returned."""

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self.sent = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(self.parts):
            await send({"type": "http.response.body", "body": b"p" * 65536,
                        "more_body": True})
            self.sent += 1
        await send({"type": "http.response.body", "body": b""})


def test_a_client_that_does_not_read_holds_the_app_back() -> None:
    """send() waits while the transport's buffer is above its high mark."""
    app = Streamer(parts=100)
    with serving(app) as server:
        connection = server.connect()
        connection.client_stops_reading()
        connection.feed(get("/"))
        transport = connection.transport
        assert transport.writing_paused
        assert app.sent < 5, app.sent  # not 100 parts into memory
        assert len(transport.buffered) < 5 * 65536
        connection.client_reads()
        [(_, headers, body)], rest = read_answers(connection, [False])
        assert rest == b""
        assert headers[b"transfer-encoding"] == b"chunked"
        assert body == b"p" * 65536 * 100
        assert app.sent == 100


# -- timeouts (small ones: they run on the loop's clock) --------------------------------


def test_a_stalled_request_head_gets_408() -> None:
    with serving("apps.misbehaving:app", HEADER_TIMEOUT=0.05) as server:
        # no blank line: it stalls
        connection = server.connect(first=b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        connection.wait_for(lambda: connection.closed, what="the close")
        [response], rest = parse_responses(connection.read(), [False])
        check_refused_alone([response], rest, 408)


def test_a_trickled_request_head_is_cut_at_the_header_timeout() -> None:
    """Slowloris: a byte at a time never finishes the head; the timer is not reset."""
    with serving("apps.misbehaving:app", HEADER_TIMEOUT=0.05) as server:
        connection = server.connect(first=b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(500):  # 5 s at most: 100 times the header timeout
            if connection.run_until(lambda: connection.closed, 0.01):
                break
            connection.feed(b"s")
        assert connection.closed
        assert connection.read().startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("first", [b"", b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"],
                         ids=["before-any-request", "after-a-request"])
def test_an_idle_connection_is_closed(first: bytes) -> None:
    settings = {"HEADER_TIMEOUT": 0.05, "KEEP_ALIVE_TIMEOUT": 0.05}
    with serving("apps.misbehaving:app", **settings) as server:
        connection = server.connect(first=first)
        if first:
            HELLO.check(parse_responses(connection.read(), [False])[0][0])
        connection.wait_for(lambda: connection.closed, what="the close")
        assert connection.read() == b""  # closed without a word: there was no request


def test_an_app_that_does_not_start_in_time_gets_504() -> None:
    with serving("apps.basic:app", REQUEST_TIMEOUT=0.05) as server:
        connection = server.connect()
        connection.feed(get("/sleep?s=30"))
        [response], _ = read_answers(connection, [False])
        Answer(504).check(response)


def test_a_connection_keeps_its_parser_until_another_needs_it(
        misbehaving: InProcessServer) -> None:
    """A keep-alive connection keeps its parser from one request to the next; a connection
    with bytes to parse and none in the pool takes an idle connection's, which parses
    exactly as a new one would: strict checks and all.  One mid-request keeps its own."""
    first, second, third = misbehaving.connect(), misbehaving.connect(), misbehaving.connect()
    assert first.protocol.parser is None  # nothing sent yet: none taken
    hello = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    assert first.send(hello).endswith(b"Hello, world!")
    parser = first.protocol.parser
    assert parser is not None and not first.closed  # kept for the next request
    assert first.send(hello).endswith(b"Hello, world!")
    assert first.protocol.parser is parser
    # The pool is empty: second takes the parser of first, idle between requests.
    assert second.send(hello).endswith(b"Hello, world!")
    assert first.protocol.parser is None and second.protocol.parser is parser
    answer = second.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert second.closed
    # A head split across reads: first's parser is in use, so third gets another.
    first.send(b"GET /hello HTTP/1.1\r\n")
    held = first.protocol.parser
    assert held is not None
    assert third.send(hello).endswith(b"Hello, world!")
    assert first.protocol.parser is held and third.protocol.parser is not held
    assert first.send(b"Host: x\r\n\r\n").endswith(b"Hello, world!")
    # A request that closes the connection is answered and nothing after it is read.
    answer = first.send(b"GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.count(b"HTTP/1.") == 1 and answer.endswith(b"Hello, world!"), answer
    assert first.closed
    assert first.protocol not in misbehaving.state.parser_holders


@pytest.fixture
def quick_parser_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle connections give their parser back after 10 ms instead of a second."""
    import qactuar.protocols.http1 as http1

    monkeypatch.setattr(http1, "PARSER_SWEEP_INTERVAL", 0.01)


@pytest.mark.usefixtures("quick_parser_sweep")
def test_an_idle_connection_gives_its_parser_back_and_still_refuses_bad_input(
        misbehaving: InProcessServer) -> None:
    """A connection that parsed nothing for a sweep interval holds no parser (idle
    memory); its next request takes one and is checked as strictly as ever."""
    connection = misbehaving.connect()
    hello = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    assert connection.send(hello).endswith(b"Hello, world!")
    connection.wait_for(lambda: connection.protocol.parser is None, what="the parser given back")
    assert connection.protocol not in misbehaving.state.parser_holders
    assert connection.send(hello).endswith(b"Hello, world!")
    answer = connection.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert connection.closed


@pytest.mark.usefixtures("quick_parser_sweep")
def test_a_connection_mid_request_head_keeps_its_parser_through_sweeps(
        misbehaving: InProcessServer) -> None:
    """The sweep takes a parser only between requests: a head still arriving keeps
    its parser (and what it has parsed so far) however long it takes."""
    connection, idle = misbehaving.connect(), misbehaving.connect()
    assert idle.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"Hello, world!")
    connection.send(b"GET /hello HTTP/1.1\r\n")
    parser = connection.protocol.parser
    # Sweeps have run once the idle connection's parser is back in the pool.
    idle.wait_for(lambda: idle.protocol.parser is None, what="the idle parser given back")
    assert connection.protocol.parser is parser
    assert connection.send(b"Host: x\r\n\r\n").endswith(b"Hello, world!")


@pytest.mark.usefixtures("quick_parser_sweep")
def test_an_idle_connection_without_its_parser_still_times_out() -> None:
    """KEEP_ALIVE_TIMEOUT closes an idle connection whose parser went back to the pool."""
    with serving("apps.misbehaving:app", KEEP_ALIVE_TIMEOUT=1) as server:
        connection = server.connect()
        assert connection.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").endswith(
            b"Hello, world!")
        connection.wait_for(lambda: connection.protocol.parser is None,
                            what="the parser given back")
        assert not connection.closed
        connection.wait_for(lambda: connection.closed)

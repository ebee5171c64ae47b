"""HTTP/1.1 request tables shared by the two test layers, and the checks of their answers.

Each table is bytes a client sends and what the server must answer.  The
end-to-end tests (test_bad_input.py, test_http1.py, test_limits.py) send them
to a real server over a socket; the in-process tests (test_inprocess_http1.py)
feed them to the protocol through a fake transport.  One table, two layers:
a row added here is checked at both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from conftest import Response

# A valid request sent right behind a refused one: it must never be answered.
PIPELINED = b"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n"


def head_of(*lines: bytes) -> bytes:
    """A request head from its lines (CRLF after each, then the blank line)."""
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def get(path: str, *headers: str, version: str = "1.1", method: str = "GET",
        body: bytes = b"") -> bytes:
    """A raw request; `Host` is added for HTTP/1.1."""
    lines = [f"{method} {path} HTTP/{version}"]
    if version == "1.1":
        lines.append("Host: test")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*chunks: bytes, end: bool = True) -> bytes:
    """A chunked body of `chunks`, with its last chunk unless `end` is False."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return body + (b"0\r\n\r\n" if end else b"")


# -- client mistakes (apps.misbehaving) --------------------------------------------------

# (request bytes, expected status) for every request the server must refuse.
BAD_REQUESTS = [
    # Request smuggling: the body's framing is ambiguous.
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Content-Length: 5",
                         b"Transfer-Encoding: chunked") + b"0\r\n\r\n", 400,
                 id="content-length-and-transfer-encoding"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked",
                         b"Content-Length: 5") + b"0\r\n\r\n", 400,
                 id="transfer-encoding-and-content-length"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Content-Length: 5",
                         b"Content-Length: 6") + b"hello!", 400,
                 id="duplicate-differing-content-length"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Content-Length: 5, 6")
                 + b"hello!", 400, id="content-length-list"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Content-Length: -5"), 400,
                 id="negative-content-length"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked",
                         b"Transfer-Encoding: chunked") + b"0\r\n\r\n", 400,
                 id="repeated-transfer-encoding"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked")
                 + b"zz\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-not-hex"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked")
                 + b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-overflow"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked")
                 + b"5\r\nhelloXX0\r\n\r\n", 400, id="no-crlf-after-chunk-data"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked")
                 + b"5\nhello\r\n0\r\n\r\n", 400, id="bare-lf-after-chunk-size"),
    pytest.param(head_of(b"POST /echo HTTP/1.0", b"Transfer-Encoding: chunked")
                 + b"5\r\nhello\r\n0\r\n\r\n", 400, id="transfer-encoding-in-http-1.0"),
    # Header syntax.
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"Bad Name: x"), 400,
                 id="space-in-header-name"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo : x"), 400,
                 id="space-before-colon"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-\x01Foo: x"), 400,
                 id="control-byte-in-header-name"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a\x01b"), 400,
                 id="control-byte-in-header-value"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a\x00b"), 400,
                 id="nul-in-header-value"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a\rb"), 400,
                 id="bare-cr-in-header-value"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a\x7fb"), 400,
                 id="del-in-header-value"),
    pytest.param(b"GET /hello HTTP/1.1\nHost: x\n\n", 400, id="bare-lf-everywhere"),
    pytest.param(b"GET /hello HTTP/1.1\nHost: x\r\n\r\n", 400, id="bare-lf-after-request-line"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400,
                 id="bare-lf-after-header"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\n\n", 400, id="bare-lf-ending-head"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a", b" b"), 400,
                 id="obs-fold-space"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"X-Foo: a", b"\tb"), 400,
                 id="obs-fold-tab"),
    # Request line.
    pytest.param(head_of(b"G@T /hello HTTP/1.1", b"Host: x"), 400, id="invalid-method"),
    pytest.param(head_of(b"GET /caf\xc3\xa9 HTTP/1.1", b"Host: x"), 400,
                 id="non-ascii-in-path"),
    pytest.param(head_of(b"GET /hello?q=\xc3\xa9 HTTP/1.1", b"Host: x"), 400,
                 id="non-ascii-in-query"),
    pytest.param(head_of(b"GET /a\x01b HTTP/1.1", b"Host: x"), 400,
                 id="control-byte-in-target"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400,
                 id="tls-handshake-bytes"),
    # Host.
    pytest.param(head_of(b"GET /hello HTTP/1.1"), 400, id="missing-host"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"Host: y"), 400, id="two-hosts"),
    pytest.param(head_of(b"GET /hello HTTP/1.1", b"Host: x", b"Host: x"), 400,
                 id="two-identical-hosts"),
    # Unsupported rather than malformed.
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x",
                         b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n", 501,
                 id="gzip-transfer-coding"),
    pytest.param(head_of(b"GET /hello HTTP/2.0", b"Host: x"), 505, id="http-2.0"),
    pytest.param(head_of(b"GET /hello HTTP/1.2", b"Host: x"), 505, id="http-1.2"),
    pytest.param(b"GET /hello\r\n\r\n", 505, id="http-0.9-no-version"),
    pytest.param(head_of(b"GET /hello HTTP/0.9"), 505, id="http-0.9"),
    pytest.param(head_of(b"POST /echo HTTP/1.1", b"Host: x", b"Expect: teapot",
                         b"Content-Length: 2") + b"hi", 417, id="unknown-expect"),
    pytest.param(head_of(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"), 501,
                 id="connect"),
]

# (request bytes, expected status): a refused HEAD request gets its status and no body.
REFUSED_HEAD_REQUESTS = [
    pytest.param(b"HEAD / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400,
                 id="bad-field"),  # the parser's refusal
    pytest.param(b"HEAD / HTTP/1.1\r\n\r\n", 400, id="no-host"),  # ours
    pytest.param(b"HEAD / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417, id="expect"),
]

# A good request, then a bad one, then PIPELINED: the good one is answered
# (after its app has waited), the bad one gets a 400, and nothing after it.
GOOD_THEN_BAD = (b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
                 + head_of(b"G@T /hello HTTP/1.1", b"Host: x") + PIPELINED)


def check_refused_alone(responses: list[Response], rest: bytes, status: int) -> None:
    """One answer with `status` and `connection: close`, then nothing (the end of the
    connection): whatever the client sent after the refused request was never read."""
    [(status_line, headers, _)] = responses
    assert status_line.startswith(b"HTTP/1.1 %d " % status), status_line
    assert headers.get(b"connection") == b"close"
    assert rest == b"", rest


def check_refused_head(data: bytes, status: int) -> None:
    """Everything a refused HEAD request got: a head with its status and a
    content-length, and no body."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"\r\ncontent-length: " in head
    assert rest == b""


# -- app mistakes (apps.misbehaving) -------------------------------------------------------

# What the client sees of an app's mistake: a clean 500 (nothing was on the wire yet),
# an aborted response (its head was out: the client can tell the body is incomplete),
# either of the two, or only that the bad bytes were never written.
CLEAN_500, ABORTED, CLEAN_500_OR_ABORTED, NOT_WRITTEN = "500", "aborted", "500-or-aborted", "-"

# (path, whether the request says Connection: close, outcome, bytes never written
# (looked for in the lower-cased answer)).
APP_MISTAKES = [
    pytest.param("/error/before", True, CLEAN_500, (b"boom",), id="exception-before-start"),
    pytest.param("/error/after", False, ABORTED, (), id="exception-after-start"),
    pytest.param("/no-response", True, CLEAN_500, (), id="no-response"),
    pytest.param("/inject/value", True, CLEAN_500, (b"x-injected", b"injected"),
                 id="crlf-in-a-header-value"),
    pytest.param("/inject/name", True, CLEAN_500, (b"x-injected", b"injected"),
                 id="crlf-in-a-header-name"),
    pytest.param("/inject/lf", True, CLEAN_500, (b"x-injected", b"injected"),
                 id="lf-in-a-header-value"),
    pytest.param("/bad-status/int", True, CLEAN_500, (b"bad status",), id="status-99"),
    pytest.param("/bad-status/str", True, CLEAN_500, (b"bad status",), id="status-a-str"),
    pytest.param("/unknown-type", True, CLEAN_500, (), id="unknown-message-type"),
    pytest.param("/not-a-mapping", True, CLEAN_500, (), id="message-not-a-mapping"),
    pytest.param("/str-body", False, CLEAN_500_OR_ABORTED, (b"a str body",), id="str-body"),
    pytest.param("/bad-length", True, CLEAN_500, (b"1x",), id="content-length-not-digits"),
    # Both values valid alone (and remembered from earlier answers): they differ.
    pytest.param("/differing-lengths", True, CLEAN_500, (b"12345",),
                 id="content-length-twice-differing"),
    # content-length 10 and one final body of 5 bytes: nothing is on the wire yet.
    pytest.param("/short-body", False, CLEAN_500, (b"12345",), id="short-body-in-one-message"),
    # The head is out when the app ends the body 5 bytes short.
    pytest.param("/short-body-streamed", False, ABORTED, (), id="short-body-after-the-head"),
    # content-length 10 and 15 bytes: the extra 5 would be read as the next response.
    pytest.param("/long-body", False, NOT_WRITTEN, (b"12345678901",),
                 id="body-over-the-declared-length"),
]


def app_mistake_request(path: str, close: bool) -> bytes:
    return get(path, *(["Connection: close"] if close else []))


def check_incomplete(raw: bytes) -> None:
    """The client can tell the response is not complete (the connection was aborted)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return  # not even a complete head
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        assert not body.endswith(b"0\r\n\r\n"), raw
    elif b"content-length" in headers:
        assert len(body) < int(headers[b"content-length"]), raw
    else:
        raise AssertionError(f"a close-delimited HTTP/1.1 response looks complete: {raw!r}")


def check_app_mistake(raw: bytes, outcome: str, never_written: tuple[bytes, ...]) -> None:
    """`raw`, everything the server sent until it closed, is what `outcome` says."""
    status_line = raw.split(b"\r\n", 1)[0]
    if outcome == CLEAN_500 or (outcome == CLEAN_500_OR_ABORTED
                                and status_line.startswith(b"HTTP/1.1 500 ")):
        assert status_line == b"HTTP/1.1 500 Internal Server Error", raw
    elif outcome in (ABORTED, CLEAN_500_OR_ABORTED):
        assert status_line == b"HTTP/1.1 200 OK", raw
        check_incomplete(raw)
    for never in never_written:
        assert never not in raw.lower(), raw


# -- limits (apps.misbehaving with SMALL_LIMITS) -----------------------------------------

SMALL_LIMITS = {"MAX_BODY_SIZE": 1000, "MAX_URL_SIZE": 100, "MAX_HEADER_SIZE": 1000,
                "MAX_HEADER_COUNT": 10, "HEADER_TIMEOUT": 3}


def cli_flags(settings: Mapping[str, object]) -> list[str]:
    """Config settings as command-line flags: {"MAX_URL_SIZE": 100} -> --max-url-size 100."""
    flags = []
    for key, value in settings.items():
        flags += ["--" + key.lower().replace("_", "-"), str(value)]
    return flags


# (request bytes, status): refused with PIPELINED sent behind it, which is never read.
OVER_LIMITS = [
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413,
                 id="content-length-over-limit"),
    pytest.param(b"GET /hello?q=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"u" * 200), 414,
                 id="url-over-limit"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (b"h" * 2000), 431,
                 id="header-over-size-limit"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n"
                 % b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 150) for i in range(8)), 431,
                 id="many-small-headers-over-size-limit"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n"
                 % b"".join(b"X-F%d: v\r\n" % i for i in range(15)), 431,
                 id="too-many-headers"),
]

# (unfinished request bytes, status): refused as soon as the limit is passed, without
# waiting for the rest of the request, and the connection is closed.
OVER_LIMITS_MID_REQUEST = [
    # Only the head: the answer must not wait for the body.
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413,
                 id="content-length-before-the-body"),
    # The terminating chunk is never sent.
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunked(b"a" * 600, b"a" * 600, end=False), 413,
                 id="chunked-body-growing-over-limit"),
    # A header value that never ends must not be buffered until the header timeout.
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"e" * 20000, 431,
                 id="unfinished-header"),
]

# (request bytes, body of the 200 answer): just within every limit.
WITHIN_LIMITS = [
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" + b"b" * 900,
                 b"b" * 900, id="content-length-body"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunked(b"c" * 450, b"c" * 450), b"c" * 900, id="chunked-body"),
    pytest.param(b"GET /hello?q=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"u" * 40),
                 b"Hello, world!", id="url"),
    pytest.param(b"GET /hello HTTP/1.1\r\nHost: x\r\n%s\r\n"
                 % b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 50) for i in range(5)),
                 b"Hello, world!", id="headers"),
]


# -- framing, keep-alive and pipelining (apps.basic) ---------------------------------------

ABSENT = None  # in Answer.headers: the header must not be there


@dataclass(frozen=True)
class Answer:
    """What one response must be: its status, its body (unless None) and, per header
    name, the values it may have (ABSENT: it must not be there)."""

    status: int
    body: bytes | None = None
    headers: Mapping[bytes, tuple[bytes | None, ...]] = field(default_factory=dict)
    head_only: bool = False  # the answer to a HEAD: a head, never a body

    def check(self, response: Response) -> None:
        status_line, headers, body = response
        assert status_line.split(b" ")[1] == b"%d" % self.status, status_line
        if self.body is not None:
            assert body == self.body, (status_line, body[:200])
        for name, allowed in self.headers.items():
            assert headers.get(name) in allowed, (name, headers.get(name), allowed)


@dataclass(frozen=True)
class Step:
    """Bytes the client sends at once, and the answers it then waits for."""

    request: bytes
    answers: tuple[Answer, ...]


HELLO = Answer(200, b"Hello, world!")
NOT_CLOSED = {b"connection": (ABSENT, b"keep-alive")}
KEPT_ALIVE_10 = {b"connection": (b"keep-alive",)}
CLOSED = {b"connection": (b"close",)}
NO_CHUNKS = {b"transfer-encoding": (ABSENT,)}
SLEEP_FIRST = 0.1  # seconds the first of a pipeline waits, so the later ones are ready first

# (steps, whether the server then closes): each sent on one connection, step by step.
EXCHANGES = [
    pytest.param((*(Step(get("/echo", "Content-Length: 1", method="POST", body=b"%d" % i),
                         (Answer(200, b"%d" % i, NOT_CLOSED),)) for i in range(5)),
                  Step(get("/hello"), (HELLO,))), False, id="keep-alive"),
    pytest.param((Step(get(f"/sleep?s={SLEEP_FIRST}") + get("/hello")
                       + get("/echo", "Content-Length: 5", method="POST", body=b"third"),
                       (Answer(200, b"slept"), HELLO, Answer(200, b"third"))),),
                 False, id="pipelined-in-order"),
    pytest.param((Step(b"".join(get("/echo", "Content-Length: 10", method="POST",
                                    body=b"request-%02d" % i) for i in range(30)),
                       tuple(Answer(200, b"request-%02d" % i) for i in range(30))),),
                 False, id="many-pipelined-in-order"),
    pytest.param((Step(get("/hello", version="1.0"),
                       (Answer(200, b"Hello, world!",
                               {b"connection": (ABSENT, b"close"), **NO_CHUNKS}),)),),
                 True, id="http-1.0-closes-by-default"),
    pytest.param((Step(get("/hello", "Connection: keep-alive", version="1.0"),
                       (Answer(200, b"Hello, world!", KEPT_ALIVE_10),)),
                  Step(get("/sized?n=7", "Connection: keep-alive", version="1.0"),
                       (Answer(200, b"x" * 7, KEPT_ALIVE_10),)),
                  Step(get("/hello", version="1.0"), (HELLO,))),
                 True, id="http-1.0-keep-alive-when-asked"),
    pytest.param((Step(get("/stream?n=3", "Connection: keep-alive", version="1.0"),
                       (Answer(200, b"chunk-0\nchunk-1\nchunk-2\n", {**CLOSED, **NO_CHUNKS}),)),),
                 True, id="http-1.0-streamed-response-is-close-delimited"),
    # The second request, in the same write, is never answered.
    pytest.param((Step(get("/hello", "Connection: close") + get("/sized?n=3"),
                       (Answer(200, b"Hello, world!", CLOSED),)),),
                 True, id="client-connection-close"),
    pytest.param((Step(get("/echo", "Transfer-Encoding: chunked", method="POST")
                       + chunked(b"a" * 10, b"b" * 300, b"c" * 5000),
                       (Answer(200, b"a" * 10 + b"b" * 300 + b"c" * 5000),)),),
                 False, id="chunked-request-body"),
    pytest.param((Step(get("/stream?n=50") + get("/hello"),
                       (Answer(200, b"".join(b"chunk-%d\n" % i for i in range(50)),
                               {b"transfer-encoding": (b"chunked",)}), HELLO)),),
                 False, id="streamed-response-keeps-the-connection-usable"),
    pytest.param((Step(get("/hello", "Connection: close"),
                       (Answer(200, b"Hello, world!",
                               {b"content-length": (b"13",), **NO_CHUNKS}),)),),
                 True, id="single-body-gets-content-length"),
    pytest.param((Step(get("/sized?n=10", method="HEAD") + get("/hello", method="HEAD")
                       + get("/stream?n=2", method="HEAD") + get("/status/204")
                       + get("/status/304") + get("/hello", "Connection: close"),
                       (Answer(200, b"", {b"content-length": (b"10",)}, head_only=True),
                        Answer(200, b"", {b"content-length": (b"13",)}, head_only=True),
                        Answer(200, b"", head_only=True),
                        Answer(204, b"", {b"content-length": (ABSENT, b"0"), **NO_CHUNKS}),
                        Answer(304, b"", NO_CHUNKS),
                        Answer(200, b"Hello, world!"))),),
                 True, id="no-body-for-head-204-304"),
    pytest.param((Step(get("/echo", "Expect: 100-continue", "Content-Length: 5",
                           method="POST"), (Answer(100),)),
                  Step(b"hello", (Answer(200, b"hello"),)),
                  # Only one interim response, and the connection goes on.
                  Step(get("/hello"), (HELLO,))),
                 False, id="expect-continue-sent-when-the-app-reads"),
    # The body the client was never asked for may or may not follow: the server closes.
    pytest.param((Step(get("/ignore-body", "Expect: 100-continue", "Content-Length: 5",
                           method="POST"), (Answer(200, b"ignored"),)),),
                 True, id="expect-continue-not-sent-when-the-app-ignores-the-body"),
]

# (request bytes with an empty body): one final http.request message, then in step.
EMPTY_BODIES = [
    pytest.param(get("/echo", "Content-Length: 0", method="POST"), id="content-length-0"),
    pytest.param(get("/echo"), id="get-no-body"),
    pytest.param(get("/echo", "Transfer-Encoding: chunked", method="POST",
                     body=b"0\r\n\r\n"), id="chunked-empty"),
]
EMPTY_BODY_ANSWER = Answer(200, b"", {b"x-receive-calls": (b"1",)})

# (Upgrade headers): an Upgrade the server does not take; the request body still
# reaches the app (llhttp stops at the head of any Upgrade request).
UPGRADES_NOT_TAKEN = [
    pytest.param(["Upgrade: foo"], id="foo"),
    # What `curl --http2 -d ...` sends on a plain port: h2c is not taken for a body.
    pytest.param(["Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"], id="h2c"),
]


def upgrade_with_body(upgrade: list[str]) -> bytes:
    return get("/echo", "Connection: Upgrade, HTTP2-Settings", *upgrade,
               "Content-Length: 11", method="POST", body=b"hello world")

"""The benchmark scenarios: which app, which measurement, how to check one answer.

A scenario is one entry in `SCENARIOS`. Its `kind` names the measurement in
`measure.MEASUREMENTS` ("wrk" load, "memory", "startup"); a later scenario
(WebSocket, HTTP/2 with h2load, prefork) is one new entry here, plus one new
measurement kind if no existing one fits. Before any load, `verify` checks
one response's status and body with a plain client, so a server that answers
wrongly but fast cannot win. This module must not start processes.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import apps
from benchmarks.process import ServerFailed

ECHO_BODY_SIZE = 10240


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # "wrk", "memory" or "startup": a key of measure.MEASUREMENTS
    app: str  # "module:attr" every server imports
    verify: Callable[[int], None]
    post_body_size: int = 0  # wrk POSTs a body of this size (0: GET)


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


def _verify_stream(port: int) -> None:
    _expect("stream", port, apps.STREAM_CHUNK * apps.STREAM_CHUNKS)


def _verify_json(port: int) -> None:
    status, headers, body = _request(port)
    if (status != 200 or json.loads(body or b"null") != apps.JSON_PAYLOAD
            or not headers.get("content-type", "").startswith("application/json")):
        raise ServerFailed(f"starlette: verification got status {status}, body {body[:60]!r}")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("hello", "hello world (plain text)", "wrk", "benchmarks.apps:hello",
             _verify_hello),
    Scenario("10k", "10 KiB response", "wrk", "benchmarks.apps:ten_kib", _verify_ten_kib),
    Scenario("echo", "POST echo of 10 KiB", "wrk", "benchmarks.apps:echo", _verify_echo,
             post_body_size=ECHO_BODY_SIZE),
    Scenario("stream", "streamed 100 x 1 KiB", "wrk", "benchmarks.apps:stream",
             _verify_stream),
    Scenario("starlette", "Starlette JSON endpoint", "wrk", "benchmarks.starlette_app:app",
             _verify_json),
    Scenario("idle-memory", "memory per idle keep-alive connection", "memory",
             "benchmarks.apps:hello", _verify_hello),
    Scenario("startup", "process start to first answered request", "startup",
             "benchmarks.apps:hello", _verify_hello),
]}

QUICK_SCENARIOS = ["hello", "echo"]

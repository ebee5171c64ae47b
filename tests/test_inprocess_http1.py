"""HTTP/1.1 in process: the real protocol fed bytes through a fake transport (tests/inprocess.py).

The parser's and framer's edge cases, exactly and fast: every read is
delivered as given (or split into pieces), and what the server wrote and
whether it closed are read back without a socket in between.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Iterator

import pytest

from inprocess import Connection, InProcessServer, serving
from qactuar._build import PURE_PYTHON_ENV_VAR, flag_is_set


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


def test_a_request_split_into_single_bytes_is_answered(misbehaving: InProcessServer) -> None:
    connection: Connection = misbehaving.connect()
    body = b"0123456789"
    answer = connection.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                             + body, pieces=1)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\n" + body)
    assert misbehaving.tracebacks() == []

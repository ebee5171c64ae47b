"""One loop timer for every HTTP/1.1 connection's deadline (qactuar/protocols/deadlines.py).

The connection-level timeouts themselves are tested where they are answered
(test_inprocess_http1.py, test_limits.py); here, what sharing one timer could break:
connections whose deadlines interleave, a handler that raises, a handler that arms
again while an earlier entry waits, and cancelled entries piling up.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterator

import pytest

from inprocess import serving
from qactuar.protocols.deadlines import Deadlines

HELLO_REQUEST = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


class Recorder:
    """A deadline target that notes when it was due, and can raise or arm again."""

    def __init__(self, fired: list[tuple[str, float]], name: str, *, fail: bool = False,
                 again: tuple[Deadlines, float] | None = None) -> None:
        self.fired, self.name, self.fail, self.again = fired, name, fail, again

    def deadline_due(self) -> None:
        self.fired.append((self.name, time.monotonic()))
        if self.again is not None:
            deadlines, delay = self.again
            self.again = None
            deadlines.add(asyncio.get_running_loop().time() + delay, self)
        if self.fail:
            raise RuntimeError("this target fails")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def deadlines(loop: asyncio.AbstractEventLoop) -> Deadlines:
    return Deadlines(loop, contextvars.Context())


def test_interleaved_connections_each_close_at_their_own_keep_alive_deadline() -> None:
    with serving("apps.misbehaving:app", KEEP_ALIVE_TIMEOUT=0.5) as server:
        early = [server.connect() for _ in range(40)]
        for connection in early:
            assert connection.send(HELLO_REQUEST).endswith(b"Hello, world!")
        late = server.connect()
        late.run_until(lambda: False, 0.3)
        assert late.send(HELLO_REQUEST).endswith(b"Hello, world!")
        late.wait_for(lambda: all(connection.closed for connection in early),
                      what="the early connections closed")
        assert not late.closed  # its deadline is 0.3 s after theirs
        late.wait_for(lambda: late.closed, what="the late connection closed")
        assert len(server.state.deadlines) == 0


def test_a_failing_handler_is_logged_and_the_other_deadlines_still_fire(
        loop: asyncio.AbstractEventLoop, deadlines: Deadlines) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("qt_exception")
    logger.addHandler(handler)
    try:
        fired: list[tuple[str, float]] = []
        now = loop.time()
        deadlines.add(now + 0.02, Recorder(fired, "fails", fail=True))
        deadlines.add(now + 0.02, Recorder(fired, "same time"))
        cancelled = deadlines.add(now + 0.03, Recorder(fired, "cancelled"))
        deadlines.add(now + 0.05, Recorder(fired, "later"))
        deadlines.cancel(cancelled)
        loop.run_until_complete(asyncio.sleep(0.15))
    finally:
        logger.removeHandler(handler)
    assert [name for name, _ in fired] == ["fails", "same time", "later"]
    assert [record.getMessage() for record in records] == [
        "a connection's deadline handler failed"]
    assert len(deadlines) == 0 and deadlines.held == 0


def test_a_handler_arming_again_does_not_delay_an_entry_already_waiting(
        loop: asyncio.AbstractEventLoop, deadlines: Deadlines) -> None:
    fired: list[tuple[str, float]] = []
    start = time.monotonic()
    now = loop.time()
    deadlines.add(now + 0.02, Recorder(fired, "re-arms", again=(deadlines, 1.0)))
    deadlines.add(now + 0.1, Recorder(fired, "waiting"))
    loop.run_until_complete(asyncio.sleep(0.5))
    assert [name for name, _ in fired] == ["re-arms", "waiting"]
    assert fired[1][1] - start < 0.4  # at its own 0.1 s, not at the re-armed 1 s
    assert len(deadlines) == 1  # the re-armed entry, not yet due


def test_cancelled_entries_are_dropped_once_they_are_most_of_the_heap(
        loop: asyncio.AbstractEventLoop, deadlines: Deadlines) -> None:
    fired: list[tuple[str, float]] = []
    now = loop.time()
    entries = [deadlines.add(now + 0.05 + i / 10_000, Recorder(fired, str(i)))
               for i in range(200)]
    for entry in entries[:150]:
        deadlines.cancel(entry)
    assert len(deadlines) == 50
    assert deadlines.held < 200  # rebuilt without (most of) the cancelled ones
    loop.run_until_complete(asyncio.sleep(0.2))
    assert [name for name, _ in fired] == [str(i) for i in range(150, 200)]
    assert deadlines.held == 0

"""The tasks waiting until a protocol may write again.

A protocol's `wait_writable()` parks the app's `send()` here while the
transport's write buffer is above its high mark, and `release()` wakes them
all once it drains or the connection is gone.  Shared by every wire protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class WriteWaiters:
    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    async def wait(self, loop: asyncio.AbstractEventLoop, timeout: float = 0.0,
                   on_timeout: Callable[[], None] | None = None) -> None:
        """Wait until released; after `timeout` seconds (SEND_TIMEOUT, 0: never) call
        `on_timeout` (which closes the connection, and so releases every waiter)."""
        future = loop.create_future()
        self._futures.append(future)
        if timeout <= 0 or on_timeout is None:
            await future
            return
        timer = loop.call_later(timeout, _expire, future, on_timeout)
        try:
            await future
        finally:
            timer.cancel()

    def release(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)


def _expire(future: asyncio.Future[None], on_timeout: Callable[[], None]) -> None:
    if not future.done():
        on_timeout()

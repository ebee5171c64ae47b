"""The tasks waiting until a protocol may write again.

A protocol's `wait_writable()` parks the app's `send()` here while the
transport's write buffer is above its high mark, and `release()` wakes them
all once it drains or the connection is gone.  Shared by every wire protocol.
"""

from __future__ import annotations

import asyncio


class WriteWaiters:
    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        future = loop.create_future()
        self._futures.append(future)
        await future

    def release(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)

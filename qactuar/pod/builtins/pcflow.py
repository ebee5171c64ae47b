"""`Server`: one producer, `consumer_num` consumers, a bounded queue between them.

Override `produce(**kwargs)` as an async generator and `consume(obj, **kwargs)`.
When the producer is exhausted the consumers finish what is queued and the
bean ends.  An exception in `consume` is logged with its traceback on
`qt_exception` and that consumer goes on with the next item.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from qactuar.logs import exception_logger
from qactuar.pod.builtins.simple import Server as SimpleServer

_END = object()


class Server(SimpleServer):
    async def produce(self, **kwargs: Any) -> AsyncIterator[Any]:
        """Yield the items to consume."""
        return
        yield  # an async generator that yields nothing

    async def consume(self, obj: Any, **kwargs: Any) -> None:
        """Handle one item."""

    async def run(self, **kwargs: Any) -> None:
        consumer_num = int(kwargs.get("consumer_num", 10))
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=int(kwargs.get("queue_size", 10)))

        async def consumer() -> None:
            while (obj := await queue.get()) is not _END:
                try:
                    await self.consume(obj, **kwargs)
                except Exception:
                    exception_logger.exception("%s.consume(%r) raised", type(self).__name__,
                                               obj)

        consumers = [asyncio.ensure_future(consumer()) for _ in range(consumer_num)]
        try:
            async for obj in self.produce(**kwargs):
                await queue.put(obj)
            for _ in consumers:
                await queue.put(_END)
            await asyncio.gather(*consumers)
        finally:
            for task in consumers:
                task.cancel()

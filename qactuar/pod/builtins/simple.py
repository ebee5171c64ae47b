"""`Server`: the scaffold of a long-running bean: startup, run, cleanup, on_stop.

Each of `startup`, `cleanup` and `on_stop` may be a plain or an async method;
`on_stop` is called when the pod sends SIGINT or SIGTERM.  `cleanup` runs
even if `run` raised or was cancelled.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from qactuar.pod.context import BeanContext

STOP_SIGNALS = ("SIGINT", "SIGTERM")


async def maybe_await(value: Any) -> Any:
    """The value, awaited first if it is awaitable (for methods that may be either)."""
    return await value if inspect.isawaitable(value) else value


class Server:
    """Subclass and override `run` (and any of the hooks)."""

    def __init__(self, context: BeanContext) -> None:
        self.context = context
        self.logger = logging.getLogger(type(self).__name__)

    @property
    def config(self) -> Any:
        return self.context.config

    def startup(self, **kwargs: Any) -> Any:
        """Before `run` (sync or async)."""

    def cleanup(self, **kwargs: Any) -> Any:
        """After `run` (sync or async)."""

    def on_stop(self, **kwargs: Any) -> Any:
        """The process was asked to stop (sync or async): make `run` return."""

    async def run(self, **kwargs: Any) -> None:
        """The server's work."""

    async def __call__(self, **kwargs: Any) -> None:
        for sig in STOP_SIGNALS:
            await self.context.add_signal_handler(sig, self._stop)
        await maybe_await(self.startup(**kwargs))
        try:
            await self.run(**kwargs)
        finally:
            await maybe_await(self.cleanup(**kwargs))

    async def _stop(self, **kwargs: Any) -> None:
        await maybe_await(self.on_stop(**kwargs))

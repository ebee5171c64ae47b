"""The ASGI lifespan protocol for one app: startup, shutdown and its `state`.

`LIFESPAN` is "auto" (an app that raises before finishing startup is taken not
to speak lifespan), "on" (that is an error) or "off" (never called).
"""

from __future__ import annotations

import asyncio
from typing import Any

from qactuar.logs import exception_logger, server_logger

ASGI_VERSION = {"version": "3.0", "spec_version": "2.0"}


class LifespanFailure(Exception):
    """Startup failed; the server must not serve. The message says why."""


class Lifespan:
    def __init__(self, app: Any, mode: str, label: str) -> None:
        self.app = app
        self.mode = mode
        self.label = label
        self.state: dict[str, Any] = {}
        self._supported = mode != "off"
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._failure: str | None = None
        self._shutdown_failure: str | None = None
        self._phase = "startup"

    async def startup(self) -> None:
        if not self._supported:
            return
        self._inbox = asyncio.Queue()
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._startup_done.wait()
        if self._failure is not None:
            raise LifespanFailure(f"startup of {self.label} failed: {self._failure}")

    async def shutdown(self, timeout: float) -> None:
        if not self._supported or self._task is None or self._task.done():
            return
        assert self._inbox is not None
        self._phase = "shutdown"
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._shutdown_done.wait(), timeout or None)
        except TimeoutError:
            server_logger.error("lifespan shutdown of %s timed out after %ss", self.label, timeout)
            self._task.cancel()
            return
        if self._shutdown_failure is not None:
            server_logger.error("lifespan shutdown of %s failed: %s", self.label,
                                self._shutdown_failure)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # the app's error, reported below; never fatal here
            if isinstance(exc, asyncio.CancelledError):
                raise
            if self._phase == "startup" and not self._startup_done.is_set():
                if self.mode == "auto":
                    server_logger.info("%s does not support the ASGI lifespan protocol "
                                       "(it raised %s); continuing without it",
                                       self.label, type(exc).__name__)
                    self._supported = False
                else:
                    exception_logger.error("lifespan startup of %s raised", self.label,
                                           exc_info=exc)
                    self._failure = f"{type(exc).__name__}: {exc}"
            else:
                exception_logger.error("lifespan of %s raised", self.label, exc_info=exc)
        finally:
            if not self._startup_done.is_set() and self._failure is None:
                # Returned without finishing startup: it does not speak lifespan.
                self._supported = False
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and self._phase == "startup":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed" and self._phase == "startup":
            self._failure = str(message.get("message", "")) or "no message given"
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete" and self._phase == "shutdown":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed" and self._phase == "shutdown":
            self._shutdown_failure = str(message.get("message", "")) or "no message given"
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r} during {self._phase}")

"""The ASGI lifespan protocol for one app: startup, shutdown and its `state`.

`LIFESPAN` is "auto" (an app that raises before finishing startup is taken not
to speak lifespan), "on" (that is an error) or "off" (never called).  An app that raises after it
has received `lifespan.startup` does speak lifespan: its startup failed, in
either mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

from qactuar.logs import exception_logger, server_logger


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
        self._received_startup = False

    async def startup(self) -> None:
        if not self._supported:
            return
        self._inbox = asyncio.Queue()
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._startup_done.wait()
        if self._failure is not None:
            raise LifespanFailure(f"startup of {self.label} failed: {self._failure}")

    def cancel(self) -> None:
        """Stop the app's lifespan task (the server is stopping before it served)."""
        if self._task is not None:
            self._task.cancel()

    async def shutdown(self, timeout: float, force: asyncio.Event | None = None) -> None:
        """Ask the app to shut down; wait up to `timeout`, or until `force` is set."""
        if not self._supported or self._task is None or self._task.done():
            return
        assert self._inbox is not None
        self._phase = "shutdown"
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        waiters = {asyncio.ensure_future(self._shutdown_done.wait())}
        if force is not None:
            waiters.add(asyncio.ensure_future(force.wait()))
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if not self._shutdown_done.is_set():
            server_logger.error("lifespan shutdown of %s did not finish%s; cancelled",
                                self.label, "" if force is not None and force.is_set()
                                else f" within {timeout}s")
            self._task.cancel()
            return
        if self._shutdown_failure is not None:
            server_logger.error("lifespan shutdown of %s failed: %s", self.label,
                                self._shutdown_failure)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # the app's error, reported below; never fatal here
            if isinstance(exc, asyncio.CancelledError):
                raise
            if self._phase == "startup" and not self._startup_done.is_set():
                if self.mode == "auto" and not self._received_startup:
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
                if self.mode == "on" and self._supported:
                    self._failure = "the app returned without completing lifespan startup"
                else:
                    # Returned without finishing startup: it does not speak lifespan.
                    self._supported = False
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict[str, Any]:
        assert self._inbox is not None
        message = await self._inbox.get()
        self._received_startup = True
        return message

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

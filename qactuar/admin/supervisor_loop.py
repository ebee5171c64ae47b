"""The admin plane's event loop inside a prefork supervisor or a postfork parent.

Those parents fork, and must not fork from inside a running event loop: the
admin plane's loop runs only while the parent waits for its next event, and
every child closes what it inherited of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from qactuar.admin.listen import close_admin


class SupervisorLoop:
    """The admin plane's asyncio loop in a supervisor that waits in a plain selector.

    The supervisor forks, so its admin loop runs only while it waits (`wait`),
    never while it forks; every child closes what it inherited of the loop and
    the admin sockets (`close_in_child`), so an admin connection never stays
    open in a worker.  A plain asyncio loop (not uvloop): it is stopped and
    restarted on every wait.
    """

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.loop = asyncio.SelectorEventLoop()
        self._waking: asyncio.Future[None] | None = None
        self.loop.run_until_complete(plane.start(self.loop))

    def wait(self, fds: list[int], timeout: float) -> None:
        """Serve the admin plane until one of `fds` is readable or `timeout` passes."""
        loop = self.loop
        waking = self._waking = loop.create_future()

        def wake() -> None:
            if not waking.done():
                waking.set_result(None)

        for fd in fds:
            loop.add_reader(fd, wake)
        timer = loop.call_later(timeout, wake)
        try:
            loop.run_until_complete(waking)
        finally:
            timer.cancel()
            for fd in fds:
                loop.remove_reader(fd)
            self._waking = None

    def wake(self) -> None:
        """Let the supervisor act now (called from an admin request)."""
        if self._waking is not None and not self._waking.done():
            self._waking.set_result(None)

    def close_in_child(self) -> None:
        """In a newly forked child: drop every descriptor of the admin plane."""
        plane = self.plane
        for sock in plane.admin_sockets:
            sock.close()
        if plane.admin_state is not None:
            for connection in list(plane.admin_state.connections):
                raw = getattr(connection.transport, "_sock", None)
                if raw is not None:
                    raw.close()
        for link in getattr(plane, "links", {}).values():
            link.sock.close()
        with contextlib.suppress(Exception):
            self.loop._ssock.close()  # type: ignore[attr-defined]
            self.loop._csock.close()  # type: ignore[attr-defined]
            self.loop._selector.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.plane.close())
            self.loop.run_until_complete(asyncio.sleep(0))
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
        close_admin(self.plane.admin_sockets)

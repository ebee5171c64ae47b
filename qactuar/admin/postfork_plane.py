"""The admin plane in a postfork parent: children report their counters as they exit."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from qactuar.admin.app import log_change
from qactuar.admin.apps import import_fresh, new_mount, replaced, start_mount
from qactuar.admin.plane import AdminPlane, describe_change
from qactuar.admin.settings import plan_change
from qactuar.admin.stats import ProcessStats, add_snapshots
from qactuar.admin.supervisor_loop import SupervisorLoop
from qactuar.asgi.router import Mount
from qactuar.config import Config
from qactuar.server_state import ServerState
from qactuar.supervisor import REQUEST_STARTED, RESPONDED


class PostforkPlane(AdminPlane):
    """The postfork parent's admin plane: children report their counters as they exit."""

    model = "postfork"

    def __init__(self, parent: Any, *args: Any) -> None:
        super().__init__(*args)
        self.parent = parent
        # Every child writes its final counters here: one write under PIPE_BUF bytes
        # is atomic, so children never interleave.
        self.report_read, self.report_write = os.pipe()
        os.set_blocking(self.report_read, False)
        os.set_blocking(self.report_write, False)
        self._partial = b""
        self.admin_mounted: set[int] = set()
        self.driver = SupervisorLoop(self)
        self.driver.loop.add_reader(self.report_read, self._read_reports)

    @property
    def config(self) -> Config:
        return self.parent.config  # type: ignore[no-any-return]

    def pids(self) -> list[int]:
        return [os.getpid(), *self.parent.children]

    def child_started(self, state: ServerState) -> None:
        """In a new child: count its requests; the parent's ends of things are closed."""
        os.close(self.report_read)
        state.stats = ProcessStats()
        self.child_state = state

    def child_exiting(self) -> None:
        state = getattr(self, "child_state", None)
        if state is None:
            return
        line = json.dumps({"pid": os.getpid(), "stats": state.stats.snapshot()},
                          separators=(",", ":")).encode() + b"\n"
        with contextlib.suppress(OSError):
            os.write(self.report_write, line)

    def _read_reports(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(self.report_read, 65536)
                if not data:
                    break
                self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError, KeyError):
                self.retired = add_snapshots(self.retired, json.loads(line)["stats"])

    def child_exited(self, pid: int, how: str, cleanly: bool) -> None:
        if not cleanly:
            self.restarts += 1
            self.last_exit = f"child pid {pid} {how}"

    async def processes(self) -> list[dict[str, Any]]:
        self._read_reports()
        parent = self.parent
        processes: list[dict[str, Any]] = [{
            "pid": os.getpid(), "role": "parent", "started": self.started,
            "uptime": round(time.time() - self.started, 3), "children": len(parent.children),
            "restarts": self.restarts, "last_exit": self.last_exit}]
        now = time.monotonic()
        for child in list(parent.children.values()):
            busy = bool(parent.slots.get(child.slot, REQUEST_STARTED)) and not bool(
                parent.slots.get(child.slot, RESPONDED))
            processes.append({"pid": child.pid, "role": "child", "client": child.extra.peer,
                              "uptime": round(now - child.started, 3), "connections": 1,
                              "in_flight": int(busy), "requests": None})
        return processes

    def current_mounts(self) -> list[Mount]:
        return list(self.parent.mounts)

    async def _mount(self, route: str, target: str, path: str) -> None:
        # Its lifespan runs here, in the parent, as the other apps' did; every
        # connection from now on is forked with it.
        mount = new_mount(route, target, import_fresh(target, path), self.config.LIFESPAN)
        await start_mount(mount)
        self.parent.mounts, old = replaced(list(self.parent.mounts), mount, route)
        await self._stop_admin_mounted(old)
        self.admin_mounted.add(id(mount))

    async def _unmount(self, route: str) -> None:
        self.parent.mounts, old = replaced(list(self.parent.mounts), None, route)
        await self._stop_admin_mounted(old)

    async def _stop_admin_mounted(self, old: Mount | None) -> None:
        # Apps mounted at start ran their startup in the parent's own loop and shut
        # down with it at exit; those mounted here, in this loop, shut down here.
        if old is not None and id(old) in self.admin_mounted:
            self.admin_mounted.discard(id(old))
            await old.lifespan.shutdown(self.config.SHUTDOWN_TIMEOUT)

    def ready(self) -> tuple[bool, str]:
        if self.parent.stopping:
            return False, "shutting down"
        return True, "accepting"

    async def patch_config(self, changes: dict[str, Any], who: str) -> dict[str, Any]:
        change = plan_change(self.parent.config, changes)
        # Every connection gets a fresh child forked from the parent: the next
        # ones serve with the new settings, the ones being served finish as they were.
        self.parent.config = change.new
        applied = sorted([*change.live, *change.needs_workers])
        if applied:
            changed = describe_change({**change.live, **change.needs_workers})
            log_change(who, f"config set {changed} (from the next connection on)")
        return {"applied": applied, "reloaded": False}

    async def close(self) -> None:
        await super().close()
        self.driver.loop.remove_reader(self.report_read)
        os.close(self.report_read)
        os.close(self.report_write)

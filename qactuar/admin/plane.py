"""The admin plane in each process model: what it reports and how it acts.

`AdminPlane` holds what every model shares (the listening sockets, the counters
of processes that have exited, resource sampling, the answers to /status and
/metrics); `InProcessPlane` is the async model's (one process: the plane runs
in the serving loop).  The prefork and postfork planes (prefork_plane.py,
postfork_plane.py) run in the supervisor, driven by `SupervisorLoop`
(supervisor_loop.py) between the supervisor's own steps.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from qactuar import __version__
from qactuar.admin.app import AdminApp, HTTPError, log_change
from qactuar.admin.apps import (
    ProcessApps,
    check_import,
    clone_release,
    describe_mounts,
    releases_dir,
)
from qactuar.admin.channel import (
    apply_live_settings,
    process_report,
    task_stacks,
)
from qactuar.admin.dashboard import page
from qactuar.admin.listen import describe_admin
from qactuar.admin.metrics import render
from qactuar.admin.pod_view import local_pod_action, local_pod_report
from qactuar.admin.procinfo import Sampler
from qactuar.admin.settings import plan_change
from qactuar.admin.stats import (
    DURATION_BUCKETS,
    ProcessStats,
    add_snapshots,
    empty_snapshot,
    percentile,
    requests_served,
)
from qactuar.asgi.lifespan import Lifespan
from qactuar.asgi.router import Mount, Router
from qactuar.config import Config
from qactuar.logs import server_logger
from qactuar.protocols.http1 import HTTP1Protocol
from qactuar.server_state import ServerState
from qactuar.sockets import describe


class AdminProtocol(HTTP1Protocol):
    """HTTP/1.1 on an admin connection; on the Unix socket the client is the peer's uid."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            uid = int.from_bytes(creds[4:8], "little")
            self.client = (f"uid:{uid}", 0)


async def start_admin_servers(loop: asyncio.AbstractEventLoop, sockets: list[socket.socket],
                              app: AdminApp) -> tuple[ServerState, list[asyncio.Server]]:
    state = ServerState(Config(ACCESS_LOG=False), Router([Mount("", app, Lifespan(
        app, "off", "the admin plane"))]), loop)
    servers = [await loop.create_server(lambda: AdminProtocol(state), sock=sock)
               for sock in sockets]
    for sock in sockets:
        server_logger.info("Admin plane on %s (pid %d)", describe_admin(sock), os.getpid())
    return state, servers


class AdminPlane:
    """What every model's admin plane shares."""

    model = "async"

    def __init__(self, config: Config, mounts: list[Mount], sockets: list[socket.socket],
                 admin_sockets: list[socket.socket], scheme: str) -> None:
        self._config = config
        self.mounts = mounts
        self.binds = [describe(sock, scheme) for sock in sockets]
        self.admin_sockets = admin_sockets
        self.started = time.time()
        self.retired = empty_snapshot()  # counters of processes that have exited
        self.restarts = 0
        self.last_exit = ""
        self.sampler = Sampler()
        self.app = AdminApp(self, dashboard=page)
        self.admin_state: ServerState | None = None
        self.servers: list[asyncio.Server] = []
        self.sampling: asyncio.Task[None] | None = None
        # route -> where an app mounted through the API came from (git URL, ref, release)
        self.sources: dict[str, dict[str, str]] = {}
        self.apps_lock: asyncio.Lock | None = None

    @property
    def config(self) -> Config:
        return self._config

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.admin_state, self.servers = await start_admin_servers(loop, self.admin_sockets,
                                                                   self.app)
        self.sampling = loop.create_task(self._sample_forever())

    async def _sample_forever(self) -> None:
        while True:
            if self.config.GATHER_PROC_STATS:
                self.sampler.sample(self.pids())
            await asyncio.sleep(self.config.CHECK_PROCESS_INTERVAL)

    def pids(self) -> list[int]:
        return [os.getpid()]

    # -- answers the app asks for --------------------------------------------------------

    async def processes(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def server_info(self) -> dict[str, Any]:
        return {"version": __version__, "model": self.model, "pid": os.getpid(),
                "started": self.started, "uptime": round(time.time() - self.started, 3),
                "binds": self.binds,
                "admin": [describe_admin(sock) for sock in self.admin_sockets],
                "apps": describe_mounts(self.current_mounts())}

    def _with_resources(self, process: dict[str, Any]) -> dict[str, Any]:
        if self.config.GATHER_PROC_STATS:
            process.update(self.sampler.fields(process["pid"]))
        return process

    async def status(self) -> dict[str, Any]:
        processes = [self._with_resources(p) for p in await self.processes()]
        totals = self._totals(processes)
        return {"server": self.server_info(),
                "totals": {"requests": requests_served(totals),
                           "connections": sum(p.get("connections") or 0 for p in processes),
                           "in_flight": sum(p.get("in_flight") or 0 for p in processes),
                           "restarts": self.restarts, "last_exit": self.last_exit},
                "latency": _latency(totals), "requests": totals["requests"],
                "buckets": totals["buckets"], "bucket_bounds": list(DURATION_BUCKETS),
                "processes": [{k: v for k, v in p.items() if k != "stats"} for p in processes]}

    def _totals(self, processes: list[dict[str, Any]]) -> dict[str, Any]:
        totals = self.retired
        for process in processes:
            if process.get("stats"):
                totals = add_snapshots(totals, process["stats"])
        return totals

    async def metrics(self) -> str:
        processes = [self._with_resources(p) for p in await self.processes()]
        return render(self._totals(processes), processes, self.restarts, self.started)

    def ready(self) -> tuple[bool, str]:
        raise NotImplementedError

    async def reload(self, who: str) -> dict[str, Any]:
        raise HTTPError(409, f"the {self.model} model has no workers to reload")

    async def scale(self, delta: int | None, count: int | None, who: str) -> dict[str, Any]:
        raise HTTPError(409, f"the {self.model} model has no worker count: use prefork")

    async def patch_config(self, changes: dict[str, Any], who: str) -> dict[str, Any]:
        raise NotImplementedError

    async def tasks(self, pid: int | None) -> dict[str, Any]:
        if pid not in (None, os.getpid()):
            raise HTTPError(404, f"no process with pid {pid} in this server")
        return {"pid": os.getpid(), "tasks": task_stacks()}

    # -- the pod (qactuar/admin/pod_view.py) ------------------------------------------

    async def pod(self, pid: int | None) -> dict[str, Any]:
        if pid not in (None, os.getpid()):
            raise HTTPError(404, f"no process with pid {pid} in this server")
        return {"processes": [{"role": "server", **await local_pod_report()}]}

    async def pod_action(self, action: str, body: dict[str, Any], pid: int | None,
                         who: str) -> dict[str, Any]:
        if pid not in (None, os.getpid()):
            raise HTTPError(404, f"no process with pid {pid} in this server")
        result = await local_pod_action(action, body)
        log_change(who, describe_pod_action(action, body, [os.getpid()]))
        return {"processes": [result]}

    # -- apps (qactuar/admin/apps.py) ------------------------------------------------

    def current_mounts(self) -> list[Mount]:
        return self.mounts

    async def list_apps(self) -> list[dict[str, Any]]:
        listed = describe_mounts(self.current_mounts())
        for entry in listed:
            entry.update(self.sources.get(entry["route"] if entry["route"] != "/" else "", {}))
        return listed

    async def mount_app(self, wanted: dict[str, str], who: str) -> dict[str, Any]:
        if self.apps_lock is None:
            self.apps_lock = asyncio.Lock()
        async with self.apps_lock:
            route, target, path = wanted["route"], wanted["app"], ""
            if wanted["git"]:
                path = str(await clone_release(wanted["git"], wanted["ref"],
                                               releases_dir(self.config), route))
            await check_import(target, path, self.config.LIFESPAN)
            await self._mount(route, target, path)
            source = {"git": wanted["git"], "ref": wanted["ref"], "release": path} if path else {}
            self.sources[route] = source
            log_change(who, f"apps mount {route or '/'} {target}"
                            + (f" from {wanted['git']} {wanted['ref'] or 'HEAD'}" if path else ""))
            return {"route": route or "/", "app": target, **source,
                    "apps": await self.list_apps()}

    async def unmount_app(self, route: str, who: str) -> dict[str, Any]:
        if self.apps_lock is None:
            self.apps_lock = asyncio.Lock()
        async with self.apps_lock:
            if not any(m.prefix == route for m in self.current_mounts()):
                raise HTTPError(404, f"no app is mounted at {route or '/'}")
            await self._unmount(route)
            self.sources.pop(route, None)
            log_change(who, f"apps unmount {route or '/'}")
            return {"unmounted": route or "/", "apps": await self.list_apps()}

    async def _mount(self, route: str, target: str, path: str) -> None:
        raise NotImplementedError

    async def _unmount(self, route: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.sampling is not None:
            self.sampling.cancel()
        for server in self.servers:
            server.close()
        if self.admin_state is not None:
            for connection in list(self.admin_state.connections):
                connection.shutdown()


def _latency(totals: dict[str, Any]) -> dict[str, float | None]:
    return {name: percentile(totals, fraction)
            for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


class InProcessPlane(AdminPlane):
    """The async model: one process serves and answers for itself."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.state: ServerState | None = None
        self.listening = False

    def on_start(self, state: ServerState, stop: Callable[[], None]) -> None:
        state.stats = ProcessStats()
        self.state = state
        self.process_apps = ProcessApps(state, self._config)
        state.loop.create_task(self.start(state.loop))

    def on_listening(self) -> None:
        self.listening = True

    async def processes(self) -> list[dict[str, Any]]:
        assert self.state is not None
        return [process_report(self.state, "server", self.started)]

    def current_mounts(self) -> list[Mount]:
        assert self.state is not None
        return list(self.state.router.mounts)

    async def _mount(self, route: str, target: str, path: str) -> None:
        await self.process_apps.mount(route, target, path)

    async def _unmount(self, route: str) -> None:
        await self.process_apps.unmount(route)

    def ready(self) -> tuple[bool, str]:
        if self.state is not None and self.state.shutting_down:
            return False, "shutting down"
        return (True, "serving") if self.listening else (False, "application startup")

    async def patch_config(self, changes: dict[str, Any], who: str) -> dict[str, Any]:
        change = plan_change(self._config, changes)
        if change.needs_workers:
            keys = ", ".join(sorted(change.needs_workers))
            raise HTTPError(409, f"config key(s) {keys} need new worker processes, and the "
                                 "async model has one process: restart it, or use prefork")
        assert self.state is not None
        apply_live_settings(self.state, change.live)
        self._config = self.state.config
        if change.live:
            log_change(who, f"config set {describe_change(change.live)}")
        return {"applied": sorted(change.live), "reloaded": False}


def describe_pod_action(action: str, body: dict[str, Any], pids: list[int]) -> str:
    """The log line of a pod action: what, on which bean, in which processes."""
    if action == "add":
        what = f"pod add {body['core']}" + (f" label {body['label']!r}" if "label" in body
                                            else "")
    else:
        target = f"id {body['id']}" if "id" in body else f"label {body['label']!r}"
        what = f"pod {action} {target}"
    return f"{what} in pid {', '.join(str(pid) for pid in pids)}"


def describe_change(changes: dict[str, Any]) -> str:
    """KEY=value pairs for the log line of a config change."""
    return ", ".join(f"{key}={value!r}" for key, value in sorted(changes.items()))

"""The admin plane in each process model: what it reports and how it acts.

`AdminPlane` holds what every model shares (the listening sockets, the counters
of processes that have exited, resource sampling, the answers to /status and
/metrics); `InProcessPlane` is the async model's (one process: the plane runs
in the serving loop), `PreforkPlane` and `PostforkPlane` run in the supervisor,
driven by `SupervisorLoop` between the supervisor's own steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
    import_fresh,
    new_mount,
    releases_dir,
    replaced,
    start_mount,
)
from qactuar.admin.channel import (
    WorkerAgent,
    WorkerLink,
    apply_live_settings,
    process_report,
    task_stacks,
)
from qactuar.admin.dashboard import page
from qactuar.admin.listen import close_admin, describe_admin
from qactuar.admin.metrics import render
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
from qactuar.supervisor import READY, REQUEST_STARTED, RESPONDED, STATUS


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
            log_change(who, f"config set {_describe(change.live)}")
        return {"applied": sorted(change.live), "reloaded": False}


def _describe(changes: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in sorted(changes.items()))


class SupervisorLoop:
    """The admin plane's asyncio loop in a supervisor that waits in a plain selector.

    The supervisor forks, so its admin loop runs only while it waits (`wait`),
    never while it forks; every child closes what it inherited of the loop and
    the admin sockets (`close_in_child`), so an admin connection never stays
    open in a worker.  A plain asyncio loop (not uvloop): it is stopped and
    restarted on every wait.
    """

    def __init__(self, plane: AdminPlane) -> None:
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


class PreforkPlane(AdminPlane):
    """The prefork supervisor's admin plane: asks each worker over its socketpair."""

    model = "prefork"

    def __init__(self, supervisor: Any, *args: Any) -> None:
        super().__init__(*args)
        self.supervisor = supervisor
        self.links: dict[int, WorkerLink] = {}
        self.driver = SupervisorLoop(self)

    @property
    def config(self) -> Config:
        return self.supervisor.config  # type: ignore[no-any-return]

    def pids(self) -> list[int]:
        return [os.getpid(), *self.supervisor.workers]

    # -- called by the supervisor ---------------------------------------------------------

    def new_channel(self) -> tuple[socket.socket, socket.socket]:
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def forked(self, pid: int, channel: tuple[socket.socket, socket.socket]) -> None:
        supervisor_end, worker_end = channel
        worker_end.close()
        self.links[pid] = WorkerLink(supervisor_end)

    def worker_agent(self, channel: tuple[socket.socket, socket.socket]) -> WorkerAgent:
        """In the new worker: its end of the channel (the supervisor's end is closed)."""
        supervisor_end, worker_end = channel
        supervisor_end.close()
        return WorkerAgent(worker_end, "worker")

    def worker_exited(self, pid: int, how: str, expected: bool) -> None:
        link = self.links.pop(pid, None)
        if link is not None:
            link.drain()
            if link.last_report is not None:
                self.retired = add_snapshots(self.retired, link.last_report["stats"])
            link.close(self.driver.loop)
        if not expected:
            self.restarts += 1
            self.last_exit = f"worker pid {pid} {how}"

    # -- answers ----------------------------------------------------------------------

    async def processes(self) -> list[dict[str, Any]]:
        supervisor = self.supervisor
        workers = list(supervisor.workers.values())
        reports = await asyncio.gather(*(self._ask(w.pid, "stats") for w in workers))
        processes: list[dict[str, Any]] = [{
            "pid": os.getpid(), "role": "supervisor", "started": self.started,
            "uptime": round(time.time() - self.started, 3), "workers": supervisor.target,
            "generation": supervisor.generation, "restarts": self.restarts,
            "last_exit": self.last_exit}]
        for worker, report in zip(workers, reports, strict=True):
            entry = {"pid": worker.pid, "role": "worker",
                     "generation": worker.extra, "stopping": worker.stopping,
                     "ready": self._worker_ready(worker)}
            if report is not None:
                entry.update({k: v for k, v in report.items() if k not in ("id", "final")})
            else:
                entry.update({"uptime": round(time.monotonic() - worker.started, 3),
                              "requests": None, "connections": None, "in_flight": None,
                              "answered": False})
            processes.append(entry)
        return processes

    async def _ask(self, pid: int, op: str, **arguments: Any) -> dict[str, Any] | None:
        link = self.links.get(pid)
        if link is None:
            return None
        return await link.ask(op, **arguments)

    def _worker_ready(self, worker: Any) -> bool:
        return bool(self.supervisor.slots.get(worker.slot, STATUS) == READY)

    def ready(self) -> tuple[bool, str]:
        supervisor = self.supervisor
        if supervisor.exit_status is not None:
            return False, "shutting down"
        current = [w for w in supervisor.workers.values()
                   if w.extra == supervisor.generation and not w.stopping]
        ready = [w for w in current if self._worker_ready(w)]
        why = f"{len(ready)} of {supervisor.target} worker(s) ready"
        return bool(ready), why

    async def reload(self, who: str) -> dict[str, Any]:
        log_change(who, "reload")
        return await self._reload(None)

    async def _reload(self, old_config: Config | None) -> dict[str, Any]:
        supervisor = self.supervisor
        if supervisor.exit_status is not None:
            raise HTTPError(409, "the server is shutting down")
        if supervisor.reloading:
            raise HTTPError(409, "a reload is already in progress")
        supervisor.begin_admin_reload()
        generation = supervisor.generation
        while supervisor.reloading and supervisor.generation == generation:
            self.driver.wake()
            await asyncio.sleep(0.05)
        failure = supervisor.reload_failure
        if failure:
            if old_config is not None:
                supervisor.config = old_config
            raise HTTPError(500, f"reload rolled back, the old workers keep serving: {failure}")
        new = [w.pid for w in supervisor.workers.values()
               if w.extra == generation and not w.stopping]
        return {"reloaded": True, "workers": new}

    async def scale(self, delta: int | None, count: int | None, who: str) -> dict[str, Any]:
        supervisor = self.supervisor
        target = supervisor.target + delta if delta is not None else count
        assert target is not None
        if target < 1:
            raise HTTPError(400, f"at least one worker is needed (asked for {target})")
        if target * 2 > supervisor.slots.count:
            raise HTTPError(400, f"at most {supervisor.slots.count // 2} workers")
        log_change(who, f"workers {supervisor.target} -> {target}")
        supervisor.set_worker_count(target)
        deadline = time.monotonic() + 2 * self.config.SHUTDOWN_TIMEOUT + 10
        while time.monotonic() < deadline:
            self.driver.wake()
            current = [w for w in supervisor.workers.values()
                       if w.extra == supervisor.generation and not w.stopping]
            if len(current) == target and all(self._worker_ready(w) for w in current):
                break
            await asyncio.sleep(0.05)
        return {"workers": supervisor.target,
                "pids": sorted(w.pid for w in supervisor.workers.values() if not w.stopping)}

    async def patch_config(self, changes: dict[str, Any], who: str) -> dict[str, Any]:
        supervisor = self.supervisor
        old = supervisor.config
        change = plan_change(old, changes)
        if "WORKERS" in change.needs_workers and len(change.needs_workers) == 1:
            supervisor.config = change.new
            log_change(who, f"config set {_describe(change.needs_workers)}")
            await self.scale(None, change.new.WORKERS or os.cpu_count() or 1, who)
            return {"applied": ["WORKERS"], "reloaded": False}
        supervisor.config = change.new
        if change.live:
            log_change(who, f"config set {_describe(change.live)}")
            await asyncio.gather(*(self._ask(pid, "config", changes=change.live)
                                   for pid in list(self.links)))
        reloaded = False
        if change.needs_workers:
            log_change(who, f"config set {_describe(change.needs_workers)} (graceful reload)")
            await self._reload(old)
            reloaded = True
            if "WORKERS" in change.needs_workers:
                supervisor.set_worker_count(change.new.WORKERS or os.cpu_count() or 1)
        return {"applied": sorted([*change.live, *change.needs_workers]), "reloaded": reloaded}

    def current_mounts(self) -> list[Mount]:
        return list(self.supervisor.mounts)

    async def _mount(self, route: str, target: str, path: str) -> None:
        # The supervisor's copy is what later workers (reloads, replacements) start with.
        mount = new_mount(route, target, import_fresh(target, path), self.config.LIFESPAN)
        await self._in_every_worker("mount", route=route, target=target, path=path)
        self.supervisor.mounts = replaced(list(self.supervisor.mounts), mount, route)[0]

    async def _unmount(self, route: str) -> None:
        self.supervisor.mounts = replaced(list(self.supervisor.mounts), None, route)[0]
        await self._in_every_worker("unmount", route=route)

    async def _in_every_worker(self, op: str, **arguments: Any) -> None:
        pids = [w.pid for w in self.supervisor.workers.values() if not w.stopping]
        timeout = self.config.SHUTDOWN_TIMEOUT + 30  # a lifespan startup and a shutdown
        answers = await asyncio.gather(*(self._ask(pid, op, timeout=timeout, **arguments)
                                         for pid in pids))
        failures = [f"worker pid {pid}: {(answer or {}).get('error', 'no answer')}"
                    for pid, answer in zip(pids, answers, strict=True)
                    if answer is None or "error" in answer]
        if failures:
            raise HTTPError(500, f"{op} failed in {len(failures)} of {len(pids)} worker(s) "
                                 f"(the others serve the new apps until the next reload): "
                                 + "; ".join(failures))

    async def tasks(self, pid: int | None) -> dict[str, Any]:
        if pid in (None, os.getpid()):
            return await super().tasks(None)
        if pid not in self.links:
            raise HTTPError(404, f"no worker with pid {pid}")
        answer = await self._ask(pid, "tasks")
        if answer is None:
            raise HTTPError(504, f"worker pid {pid} did not answer")
        return {"pid": pid, "tasks": answer["tasks"]}


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
            log_change(who, f"config set {_describe({**change.live, **change.needs_workers})}"
                            " (from the next connection on)")
        return {"applied": applied, "reloaded": False}

    async def close(self) -> None:
        await super().close()
        self.driver.loop.remove_reader(self.report_read)
        os.close(self.report_read)
        os.close(self.report_write)

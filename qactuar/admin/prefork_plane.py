"""The admin plane in a prefork supervisor: it asks each worker over its socketpair."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

from qactuar.admin.app import HTTPError, log_change
from qactuar.admin.apps import import_fresh, new_mount, replaced
from qactuar.admin.channel import WorkerAgent, WorkerLink
from qactuar.admin.plane import AdminPlane, describe_change, describe_pod_action
from qactuar.admin.pod_view import local_pod_action, local_pod_report
from qactuar.admin.settings import plan_change
from qactuar.admin.stats import add_snapshots
from qactuar.admin.supervisor_loop import SupervisorLoop
from qactuar.asgi.router import Mount
from qactuar.config import Config
from qactuar.supervisor import READY, STATUS


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
            log_change(who, f"config set {describe_change(change.needs_workers)}")
            await self.scale(None, change.new.WORKERS or os.cpu_count() or 1, who)
            return {"applied": ["WORKERS"], "reloaded": False}
        supervisor.config = change.new
        if change.live:
            log_change(who, f"config set {describe_change(change.live)}")
            await asyncio.gather(*(self._ask(pid, "config", changes=change.live)
                                   for pid in list(self.links)))
        reloaded = False
        if change.needs_workers:
            changed = describe_change(change.needs_workers)
            log_change(who, f"config set {changed} (graceful reload)")
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

    # -- the pod: the supervisor's beans and each worker's -----------------------------

    async def pod(self, pid: int | None) -> dict[str, Any]:
        pids = self._pod_pids(pid)
        reports = await asyncio.gather(*(self._pod_ask(p, "pod") for p in pids))
        processes = []
        for process, report in zip(pids, reports, strict=True):
            role = "supervisor" if process == os.getpid() else "worker"
            if report is None:
                report = {"pid": process, "pod": None, "beans": [], "answered": False}
            processes.append({"role": role, **{k: v for k, v in report.items() if k != "id"}})
        return {"processes": processes}

    def _pod_pids(self, pid: int | None) -> list[int]:
        if pid is None:
            return [os.getpid(), *(w.pid for w in self.supervisor.workers.values()
                                   if not w.stopping)]
        if pid != os.getpid() and pid not in self.links:
            raise HTTPError(404, f"no process with pid {pid} in this server")
        return [pid]

    async def _pod_ask(self, pid: int, op: str, **arguments: Any) -> dict[str, Any] | None:
        if pid == os.getpid():
            try:
                if op == "pod":
                    return await local_pod_report()
                return await local_pod_action(arguments["action"], arguments["body"])
            except HTTPError as exc:
                return {"pid": pid, "error": exc.reason, "status": exc.status}
        return await self._ask(pid, op, timeout=10.0, **arguments)

    async def pod_action(self, action: str, body: dict[str, Any], pid: int | None,
                         who: str) -> dict[str, Any]:
        """The rule: with a pid, that process (the supervisor or one worker).  Without:
        `add` goes to every worker, or to the supervisor for `placement: supervisor`;
        `cancel`/`restart` by label go to every process that has a bean with that label
        (404 if none has); by id they need a pid (ids are per process)."""
        if pid is not None:
            pids = self._pod_pids(pid)
        elif action == "add":
            pids = ([os.getpid()] if body.get("placement") == "supervisor" else
                    [w.pid for w in self.supervisor.workers.values() if not w.stopping])
        elif "id" in body:
            raise HTTPError(400, "bean ids are per process in prefork: give the pid too "
                                 "(see GET /pod), or use the label")
        else:
            pids = self._pod_pids(None)
        answers = await asyncio.gather(*(self._pod_ask(p, "pod_action", action=action,
                                                       body=body) for p in pids))
        done, errors = [], []
        for process, answer in zip(pids, answers, strict=True):
            if answer is None:
                errors.append((504, f"pid {process} did not answer"))
            elif "error" in answer:
                errors.append((answer.get("status", 500), answer["error"]))
            else:
                done.append({k: v for k, v in answer.items() if k != "id"})
        if pid is None and action != "add":
            # By label over every process: those without that label are not a failure.
            missing = [e for e in errors if e[0] in (404, 409)]
            errors = [e for e in errors if e[0] not in (404, 409)]
            if not done and not errors and missing:
                errors = [e for e in missing if e[0] == 404][:1] or missing[:1]
        if done:
            log_change(who, describe_pod_action(action, body, [d["pid"] for d in done]))
        if errors:
            status, reason = errors[0]
            if done:
                reason = (f"{len(errors)} of {len(pids)} process(es) failed, the others did "
                          f"it: {reason}")
            raise HTTPError(status if not done else 500, reason)
        return {"processes": done}

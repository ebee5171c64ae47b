"""How a supervisor asks its workers for their numbers: one socketpair per worker.

The supervisor creates the pair before it forks a worker.  The worker answers
one JSON line per JSON line asked (`WorkerAgent`, in the worker's event loop);
nothing flows while nobody asks, so an idle admin plane costs the workers
nothing.  As it exits, a worker writes its final counters down the same socket
(`send_final`), which the supervisor reads when it reaps the worker, so the
server-wide counters never go backwards when a worker is replaced.

Asking on demand rather than having workers push: the counters cost nothing
between scrapes, and the same channel carries the rarer questions (task stacks,
a live setting) that a push stream could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import traceback
from typing import Any

from qactuar.admin.app import HTTPError
from qactuar.admin.apps import ProcessApps
from qactuar.admin.pod_view import local_pod_action, local_pod_report
from qactuar.admin.stats import requests_served
from qactuar.limits import Limits
from qactuar.logs import server_logger

# Settings a serving process applies at once: ACCESS_LOG on its state, the limits and
# timeouts through a new Limits object (read per request or per connection, so no
# connection is dropped).
LIVE_SERVING_SETTINGS = ("ACCESS_LOG", "REQUEST_TIMEOUT", "KEEP_ALIVE_TIMEOUT", "HEADER_TIMEOUT",
                         "LIMIT_CONCURRENCY", "MAX_BODY_SIZE", "MAX_URL_SIZE")


def process_report(state: Any, role: str, started: float) -> dict[str, Any]:
    """What one serving process says about itself."""
    snapshot = state.stats.snapshot()
    streams = 0
    for connection in state.connections:
        streams += len(getattr(connection, "sinks", None) or ())  # HTTP/2 streams
    report = {"pid": os.getpid(), "role": role, "started": started,
              "uptime": round(time.time() - started, 3), "requests": requests_served(snapshot),
              "connections": len(state.connections), "streams": streams,
              "in_flight": state.in_flight, "stats": snapshot}
    counters = getattr(state, "datagram_counters", None)
    if counters is not None:  # QUIC_BIND / UDP_BINDS drops (qactuar/udp/counters.py)
        report["datagrams"] = dict(counters.counts)
    return report


def apply_live_settings(state: Any, changes: dict[str, Any]) -> None:
    """Apply already-validated live settings to this process's config and state."""
    for key, value in changes.items():
        setattr(state.config, key, value)
    # Limits is one read-only object: a new one, swapped in one assignment.
    state.limits = Limits(state.config)
    state.access_log = state.config.ACCESS_LOG


def task_stacks(limit: int = 12) -> list[dict[str, Any]]:
    """The asyncio tasks of the running loop, each with its current stack."""
    tasks = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=limit)
        stack = [f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
                 for frame in frames]
        coro = task.get_coro()
        tasks.append({"name": task.get_name(),
                      "coroutine": getattr(coro, "__qualname__", type(coro).__name__),
                      "done": task.done(), "stack": stack})
    return tasks


class WorkerAgent:
    """The worker's end: answers the supervisor's questions in the worker's loop."""

    def __init__(self, sock: socket.socket, role: str) -> None:
        self.sock = sock
        self.role = role
        self.started = time.time()
        self.state: Any = None
        self.apps: ProcessApps | None = None  # made when first needed
        # Its own descriptor for the last word, written after the event loop is gone.
        self._final_fd = os.dup(sock.fileno())

    def start(self, state: Any) -> asyncio.Task[None]:
        self.state = state
        return state.loop.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=self.sock)
        except OSError:
            return
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                request = json.loads(line)
                answer = {"id": request.get("id"), **await self._answer(request)}
            except Exception as exc:  # a bug here must not take the worker down
                server_logger.error("admin: worker pid %d could not answer: %s",
                                    os.getpid(), "".join(traceback.format_exception_only(exc)))
                answer = {"id": None, "error": str(exc)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op in ("mount", "unmount"):
            if self.apps is None:
                self.apps = ProcessApps(self.state, self.state.config)
            try:
                if op == "mount":
                    await self.apps.mount(request["route"], request["target"], request["path"])
                    return {"pid": os.getpid(), "mounted": True}
                return {"pid": os.getpid(), "unmounted": await self.apps.unmount(request["route"])}
            except HTTPError as exc:
                return {"pid": os.getpid(), "error": exc.reason}
        if op == "stats":
            return process_report(self.state, self.role, self.started)
        if op == "tasks":
            return {"pid": os.getpid(), "tasks": task_stacks()}
        if op == "pod":
            return await local_pod_report()
        if op == "pod_action":
            try:
                return await local_pod_action(request["action"], request["body"])
            except HTTPError as exc:
                return {"pid": os.getpid(), "error": exc.reason, "status": exc.status}
        if op == "config":
            apply_live_settings(self.state, request["changes"])
            return {"pid": os.getpid(), "applied": sorted(request["changes"])}
        return {"error": f"unknown question {op!r}"}

    def send_final(self) -> None:
        """The last counters, written as the worker exits (its loop has stopped)."""
        if self.state is None:
            return
        report = {"id": None, "final": True,
                  **process_report(self.state, self.role, self.started)}
        with contextlib.suppress(OSError):
            os.write(self._final_fd, json.dumps(report).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(self._final_fd)


class WorkerLink:
    """The supervisor's end of one worker's socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(False)
        self.buffer = b""
        self.next_id = 0
        self.last_report: dict[str, Any] | None = None
        self.lock: asyncio.Lock | None = None
        self.closed = False
        self._answers: dict[int, dict[str, Any]] = {}  # by question id, until collected

    async def ask(self, op: str, timeout: float = 2.0, **arguments: Any) -> dict[str, Any] | None:
        """Ask the worker; None if it does not answer within `timeout`."""
        if self.closed:
            return None
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            self.next_id += 1
            ident = self.next_id
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(self._exchange(loop, ident, op, arguments), timeout)
            except (TimeoutError, OSError):
                return None
            return self._answers.pop(ident, None)

    async def _exchange(self, loop: asyncio.AbstractEventLoop, ident: int, op: str,
                        arguments: dict[str, Any]) -> None:
        await loop.sock_sendall(self.sock, json.dumps({"id": ident, "op": op,
                                                       **arguments}).encode() + b"\n")
        while ident not in self._answers:
            data = await loop.sock_recv(self.sock, 65536)
            if not data:
                raise OSError("the worker closed its channel")
            self._take(data)

    def _take(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "stats" in message:
                self.last_report = message
            if message.get("id") is not None:
                self._answers[message["id"]] = message

    def drain(self) -> None:
        """Read what the worker left (its final counters); never blocks."""
        if self.closed:
            return
        with contextlib.suppress(OSError):
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self._take(data)

    def close(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Close the supervisor's end; `loop` forgets the socket first (a question
        still waiting on it then times out instead of reading a reused descriptor)."""
        self.closed = True
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.sock.fileno())
            loop.remove_writer(self.sock.fileno())
        self.sock.close()

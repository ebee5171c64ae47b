"""`--scenario FILE.py`: virtual users, each running the file's `async def user(client)` in a loop.

Each of the `-c` users has its own `qactuar.client.Client` (its own
connections, cookies, HTTP/2 by ALPN on https://, HTTP/1.1 with `--h1`),
wrapped in a `RecordingClient` that counts every request it makes into the
run's `RunStats`: latency, status, bytes, or an error by kind.  So the
report, `--json`, `--csv`, `--html` and `--fail-if` work as for URLs.  `-n`
counts runs of `user` (all users together); `-D` runs them until the time
is up.  An exception the scenario raises itself (not a request's) counts as
one errored entry of kind `scenario`, and the first such traceback is printed
once.  This is the flexible path: it makes a Response object per request, so
it is slower per request than the URL engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from time import monotonic_ns
from typing import Any

from qactuar.load.options import LoadOptions, UsageError
from qactuar.load.stats import RunStats

UserFunction = Callable[[Any], Coroutine[Any, Any, Any]]
DRAIN_GRACE_S = 1.0  # after -D, how long users may finish what they are doing
_COUNTED = "_qactuar_load_counted"  # set on a request's exception once it was counted


def load_scenario(path: Path) -> UserFunction:
    """The file's `user` coroutine function; UsageError (one line) when there is none."""
    if not path.is_file():
        raise UsageError(f"--scenario {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"qactuar_load_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--scenario {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error is theirs to see in one line
        where = ""
        if isinstance(exc, SyntaxError):
            where = f" (line {exc.lineno})"
        else:
            frames = [f for f in traceback.extract_tb(exc.__traceback__)
                      if f.filename == str(path)]
            where = f" (line {frames[-1].lineno})" if frames else ""
        raise UsageError(f"--scenario {path}: cannot import it{where}: "
                         f"{type(exc).__name__}: {exc}") from None
    user = getattr(module, "user", None)
    if user is None or not inspect.iscoroutinefunction(user):
        raise UsageError(f"--scenario {path}: it has no 'async def user(client)'")
    return user  # type: ignore[no-any-return]


def error_kind(exc: BaseException) -> str:
    """The report's error kind of a client exception."""
    from qactuar.client import errors

    if isinstance(exc, errors.ConnectTimeout | errors.ConnectError | errors.TLSError
                  | errors.NameResolutionError):
        return "connect"
    if isinstance(exc, errors.RequestTimeout | errors.TotalTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, errors.ConnectionClosed | errors.StreamReset | errors.SocketError
                  | errors.NoResponse | errors.ChannelClosed | ConnectionError):
        return "reset"
    return "protocol"


class RecordingClient:
    """A `qactuar.client.Client` whose requests are counted into the run's statistics.

    `request`, `get`, `post`, `put`, `patch`, `delete`, `head` and `options` are
    counted; a URL starting with `/` is joined to the run's base URL.  Anything else
    is the Client's own (not counted)."""

    def __init__(self, client: Any, run: ScenarioRun) -> None:
        self._client = client
        self._run = run

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        run = self._run
        if url.startswith("/") and run.base_url:
            url = run.base_url + url
        start = monotonic_ns()
        measured = run.stats.start(start)
        run.in_flight += 1
        try:
            response = await self._client.request(method, url, **kwargs)
        except asyncio.CancelledError:
            if measured:
                run.stats.errored_request(start, monotonic_ns(), "unfinished")
            raise
        except Exception as exc:
            if measured:
                run.stats.errored_request(start, monotonic_ns(), error_kind(exc))
            with contextlib.suppress(AttributeError):
                setattr(exc, _COUNTED, True)
            raise
        finally:
            run.in_flight -= 1
        head = sum(len(name) + len(value) + 4 for name, value in response.raw_headers)
        run.stats.answered(start, monotonic_ns(), response.status_code, head,
                           len(response.content))
        return response

    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("OPTIONS", url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ScenarioRun:
    """One process's users; the same interface to the command as the URL runner's `Run`."""

    def __init__(self, options: LoadOptions, users: int, runs: int | None,
                 progress: Callable[[RunStats, int], None] | None = None) -> None:
        assert options.scenario is not None
        self.options = options
        self.user = load_scenario(options.scenario)
        self.users = users
        self.remaining = -1 if runs is None else runs
        self.base_url = options.targets[0].url.rstrip("/") if options.targets else ""
        self.stats = RunStats(keep_rows=options.csv_file is not None)
        self.progress = progress
        self.in_flight = 0
        self.stopping = False
        self.interrupted = False
        self.traceback_shown = False
        self.second = 0
        self.end_ns = 0
        self.handles: list[asyncio.TimerHandle] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def execute(self) -> RunStats:
        from qactuar.load.runner import STOP_SIGNALS, cpu_seconds, deliver_stop_signals

        loop = asyncio.get_running_loop()
        options = self.options
        cpu_before = cpu_seconds()
        start_ns = monotonic_ns()
        self.stats.measure_from_ns = start_ns + int(options.warm_up * 1e9)
        handles = self.handles
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.interrupt)
        deliver_stop_signals(True)
        if options.duration is not None:
            handles.append(loop.call_later(options.warm_up + options.duration, self.stop))
        handles.append(loop.call_later(options.warm_up + 1.0, self.tick_second))
        self.tasks = [loop.create_task(self.run_user()) for _ in range(self.users)]
        try:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            deliver_stop_signals(False)
            for signum in STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signum)
            for handle in self.handles:
                handle.cancel()
        end_ns = self.end_ns if self.stopping else monotonic_ns()
        stats = self.stats
        stats.duration_s = max(end_ns - max(stats.measure_from_ns, start_ns), 1) / 1e9
        if stats.latency.count > stats.second_start.count or stats.second_errors:
            stats.close_second(self.second)
        stats.cpu_s = cpu_seconds() - cpu_before
        return stats

    async def run_user(self) -> None:
        from qactuar.client import Client

        client = Client(timeout=self.options.timeout, verify=False,
                        http2=not self.options.force_h1, headers=self.options.headers or None)
        recording = RecordingClient(client, self)
        try:
            while not self.stopping and self.remaining != 0:
                if self.remaining > 0:
                    self.remaining -= 1
                try:
                    await self.user(recording)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the scenario's own: counted, shown once
                    if not getattr(exc, _COUNTED, False):
                        self.scenario_failed(exc)
                await asyncio.sleep(0)  # a run that never waited still lets -D's timer fire
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def scenario_failed(self, exc: Exception) -> None:
        now = monotonic_ns()
        if self.stats.start(now):
            self.stats.errored_request(now, now, "scenario")
        if not self.traceback_shown:
            self.traceback_shown = True
            text = "".join(traceback.format_exception(exc))
            sys.stderr.write(f"qactuar load: the scenario raised (shown once, every such "
                             f"error counts as a 'scenario' error):\n{text}")
            sys.stderr.flush()

    def tick_second(self) -> None:
        if self.stopping:
            return
        self.stats.close_second(self.second)
        self.second += 1
        if self.progress is not None:
            self.progress(self.stats, self.second)
        delay = (self.stats.measure_from_ns + (self.second + 1) * 1e9 - monotonic_ns()) / 1e9
        self.handles.append(asyncio.get_running_loop().call_later(max(0.0, delay),
                                                                  self.tick_second))

    def stop(self) -> None:
        """The time is up: users finish their current run (a second's grace), then stop."""
        if self.stopping:
            return
        self.stopping = True
        self.end_ns = monotonic_ns()
        self.handles.append(asyncio.get_running_loop().call_later(
            min(DRAIN_GRACE_S, self.options.timeout), self.cut_off))

    def interrupt(self) -> None:
        """Ctrl-C: stop now; requests in flight count as unfinished."""
        self.interrupted = True
        self.stop()
        self.cut_off()

    def cut_off(self) -> None:
        for task in self.tasks:
            task.cancel()

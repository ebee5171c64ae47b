"""Beans for tests/test_pod*.py: each prints what it does, one line at a time."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from qactuar.pod import pass_context


def say(*parts: Any) -> None:
    print("BEAN", *parts, flush=True)


async def greet(name: str = "world", times: int = 1) -> str:
    for _ in range(times):
        say(f"greet {name}")
    return name


class Counter:
    """A class bean: counts until SIGTERM, ready at once."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.count = 0
        self.stop = asyncio.Event()

    async def __call__(self, step: int = 1) -> None:
        for sig in ("SIGINT", "SIGTERM"):
            await self.context.add_signal_handler(sig, self.on_stop)
        say(f"counter id={self.context.id} label={self.context.label} "
            f"instance={self.context.instance is self}")
        self.context.ready()
        while not self.stop.is_set():
            self.count += step
            await asyncio.sleep(0.01)
        say(f"counter {self.context.id} stopped")

    def on_stop(self, **kwargs: Any) -> None:
        say(f"counter {self.context.id} got {kwargs['signal']}")
        self.stop.set()


@pass_context
async def with_context(context: Any, tag: str = "") -> None:
    say(f"with_context id={context.id} label={context.label} tag={tag}")


@pass_context(label="labelled")
async def labelled(context: Any) -> None:
    say(f"labelled label={context.label}")


async def forever(name: str = "forever") -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        say(f"{name} cancelled")
        raise


async def stubborn() -> None:
    """Swallows every cancellation."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            say("stubborn swallowed a cancellation")


def _count_run(path: str) -> int:
    with open(path, "a") as file:
        file.write(f"{os.getpid()}\n")
    return len(Path(path).read_text().splitlines())


async def crash(path: str, delay: float = 0.0) -> None:
    run = _count_run(path)
    say(f"crash run {run}")
    await asyncio.sleep(delay)
    raise RuntimeError(f"crash number {run}")


async def quick(path: str) -> None:
    say(f"quick run {_count_run(path)}")


class Gate:
    """Ready once the file `go` exists; a gate bean holds the server's socket until then."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.is_ready = False

    async def __call__(self, go: str) -> None:
        say("gate waiting")
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        self.is_ready = True
        self.context.ready()
        await forever("gate")


async def where(path: str, tag: str) -> None:
    """Record which process runs this bean, then run until cancelled."""
    with open(path, "a") as file:
        file.write(f"{tag} {os.getpid()}\n")
    await forever(tag)


async def blocker(seconds: float) -> None:
    await asyncio.sleep(0.05)
    say("blocking the loop")
    time.sleep(seconds)  # the bug the blocked-loop detector reports
    say("unblocked")


@pass_context
async def inspector(context: Any) -> None:
    """Exercise the context API against a Counter labelled 'counter'."""
    counter = context.get_bean("counter")
    say(f"found {counter.label} id={counter.id} by_id={context.get_bean(counter.id) is counter}")
    try:
        context.get_beans("no-such-label")
    except LookupError as exc:
        say(f"unknown label: {type(exc).__name__}: {exc}")
    added = context.add_bean("apps.pod_beans.greet", label="added", name="runtime")
    await context.wait_beans_done("added")
    say(f"added bean done result={added.result()}")
    extra = context.add_bean("apps.pod_beans.forever", label="temp", name="temp")
    await asyncio.sleep(0)
    await context.remove_bean("temp")
    say(f"removed temp state={extra.state} labels={sorted(b.label or '' for b in context.beans)}")
    await context.send_signal("SIGTERM", labels=["counter"])
    await context.wait_beans_done("counter")
    say(f"counter done count>0={counter.instance.count > 0}")


async def crash_when(go: str) -> None:
    """Raise once the file `go` exists (a failure the test times)."""
    while not os.path.exists(go):
        await asyncio.sleep(0.01)
    raise RuntimeError("told to crash")


async def cancelled_inside(path: str) -> None:
    """Ends with a CancelledError nobody outside asked for (a cancelled future)."""
    say(f"cancelled_inside run {_count_run(path)}")
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


class Unready:
    """A gate bean that never becomes ready but stops on SIGTERM."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.stop = asyncio.Event()

    async def __call__(self) -> None:
        await self.context.add_signal_handler("SIGTERM", self.stop.set)
        say("unready waiting")
        await self.stop.wait()
        say("unready stopped")

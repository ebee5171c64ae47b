"""Beans for tests/test_admin_pod.py: they leave traces in files, so a test sees them run."""

from __future__ import annotations

import asyncio
import os


async def waiter() -> None:
    """Waits for ever (its stack in /pod shows this function)."""
    await asyncio.sleep(3600)


async def broken() -> None:
    raise ValueError("broken on purpose")


async def ticker(path: str) -> None:
    """Writes "start PID" once per run, then "tick PID" every 20 ms."""
    with open(path, "a") as file:
        file.write(f"start {os.getpid()}\n")
    while True:
        with open(path, "a") as file:
            file.write(f"tick {os.getpid()}\n")
        await asyncio.sleep(0.02)

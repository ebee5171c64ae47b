"""The background-task state of `starlette_app` and `fastapi_app`, kept in a file.

The task scheduled by `POST /background/{token}` waits until some request has
released its token, then marks it done.  Release and done are lines in the
events file (`apps.lifespan_apps.record`, named by `TEST_EVENTS_FILE`), not in
this process's memory: under prefork/postfork the scheduling request, the
release and the status check can each land on a different worker process.
"""

from __future__ import annotations

import asyncio
import os

from apps.lifespan_apps import EVENTS_VAR, record

DEADLINE = 20.0  # seconds a task waits for its release before it gives up


def _lines() -> list[str]:
    path = os.environ.get(EVENTS_VAR)
    if not path:
        raise RuntimeError(f"background tasks need {EVENTS_VAR} (a file shared by the workers)")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().splitlines()
    except FileNotFoundError:
        return []


def release(token: str) -> None:
    _lines()  # refuse early when there is no shared file
    record(f"released {token}")


def is_done(token: str) -> bool:
    return f"done {token}" in _lines()


async def finish_later(token: str) -> None:
    """The background task: wait for the token's release, then mark it done."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while f"released {token}" not in _lines():
        if loop.time() > give_up:
            raise TimeoutError(f"token {token} was never released")
        await asyncio.sleep(0.02)
    record(f"done {token}")

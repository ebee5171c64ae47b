"""The admin plane's view of this process's pod, and its actions on it.

Everything goes through the pod's public context (`qactuar.pod.context`):
list the beans, add one, cancel or restart beans by id or label.  The pod may
run in another thread's loop (the prefork supervisor's and postfork parent's
beans run in a `ThreadPod`), so each question is run in the pod's own loop.
Answers are plain dicts; a mistake of the asker is an `HTTPError` with the
one-line reason (a bad bean spec: the same line the config's BEANS gives).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from qactuar.admin.app import HTTPError
from qactuar.config import ConfigError
from qactuar.pod.bean import describe_core
from qactuar.pod.context import PodContext, UnknownBean, current_pod

T = TypeVar("T")
STACK_LIMIT = 12
ACTIONS = ("add", "cancel", "restart")


def describe_bean(bean: Any) -> dict[str, Any]:
    """One bean as /pod shows it: what it is, how it is doing, where it is now."""
    task = bean.task
    stack: list[str] = []
    if isinstance(task, asyncio.Task) and not task.done():
        stack = [f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
                 for frame in task.get_stack(limit=STACK_LIMIT)]
    spec = bean.spec
    return {"id": bean.id, "label": bean.label, "core": spec.path or describe_core(spec.core),
            "form": spec.form, "state": bean.state, "restarts": bean.restarts,
            "restart": spec.restart, "placement": spec.placement,
            "last_error": bean.last_error, "traceback": bean.last_traceback,
            "stack": stack}


async def _in_pod_loop(work: Callable[[PodContext], Awaitable[T]]) -> T:
    """Run `work` in the loop of this process's pod (409 when none runs here)."""
    try:
        context = current_pod()
    except LookupError as exc:
        raise HTTPError(409, f"pid {os.getpid()}: {exc}") from None
    loop = context.loop
    if loop is asyncio.get_running_loop():
        return await work(context)
    if loop.is_closed():
        raise HTTPError(409, f"pid {os.getpid()}: the pod has stopped")
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(context), loop))


async def local_pod_report() -> dict[str, Any]:
    """This process's beans: {"pid", "pod": whether one runs here, "beans": [...]}."""
    try:
        current_pod()
    except LookupError:
        return {"pid": os.getpid(), "pod": False, "beans": []}

    async def listing(context: PodContext) -> list[dict[str, Any]]:
        return [describe_bean(bean) for bean in context.beans]

    return {"pid": os.getpid(), "pod": True, "beans": await _in_pod_loop(listing)}


def check_action(action: str, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of an action, checked for shape (the spec itself is checked by the pod).

    add: a BEANS entry (`core`, `label`, reserved keys, keyword arguments);
    cancel/restart: `{"id": N}` or `{"label": "name"}`.  `pid` is taken out first.
    """
    body = {k: v for k, v in body.items() if k != "pid"}
    if action == "add":
        if "core" not in body:
            raise HTTPError(400, "give the bean as in BEANS: {\"core\": \"pkg.mod.func\", "
                                 "\"label\": ..., keyword arguments...}")
        if not isinstance(body["core"], str):
            raise HTTPError(400, f"core = {body['core']!r}: expected a dotted path such as "
                                 "'package.module.function'")
        return body
    keys = set(body)
    if keys not in ({"id"}, {"label"}):
        raise HTTPError(400, 'give exactly one of {"id": N} or {"label": "name"}')
    value = body.get("id", body.get("label"))
    if "id" in body and (not isinstance(value, int) or isinstance(value, bool)):
        raise HTTPError(400, f"id must be an integer, not {value!r}")
    if "label" in body and (not isinstance(value, str) or not value):
        raise HTTPError(400, f"label must be a non-empty string, not {value!r}")
    return body


async def local_pod_action(action: str, body: dict[str, Any]) -> dict[str, Any]:
    """Do a checked action (see `check_action`) on this process's pod."""

    async def act(context: PodContext) -> list[dict[str, Any]]:
        if action == "add":
            entry = dict(body)
            core, label = entry.pop("core"), entry.pop("label", None)
            try:
                return [describe_bean(context.add_bean(core, label, **entry))]
            except ConfigError as exc:
                raise HTTPError(400, str(exc)) from None
            except (RuntimeError, UnknownBean) as exc:
                raise HTTPError(409, str(exc)) from None
        target = body.get("id", body.get("label"))
        try:
            if action == "cancel":
                beans = await context.cancel_bean(target)
            else:
                beans = await context.restart_bean(target)
        except UnknownBean as exc:
            raise HTTPError(404, str(exc)) from None
        except (RuntimeError, ValueError) as exc:
            raise HTTPError(409, str(exc)) from None
        return [describe_bean(bean) for bean in beans]

    return {"pid": os.getpid(), "beans": await _in_pod_loop(act)}

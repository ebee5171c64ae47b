"""The pod: runs beans as tasks, restarts them by policy, and stops them within bounds.

Start: beans in `after` order, each once the beans it comes after are ready.
Stop (SIGINT/SIGTERM, or the server shutting down): the signal goes to the
callbacks beans registered, deepest `after` level first, then the pod waits
up to STOP_WAIT_TIME (None: for ever) for the beans to end; what is left is
cancelled, and a bean still running CANCEL_GRACE after that is named in the
log and abandoned so the process can exit.  A bean past its restart limit
fails the pod: it stops with EXIT_BEAN_FAILED.  Forms and specs are
`bean.py`'s, restart arithmetic `supervision.py`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

from qactuar.logs import exception_logger, server_logger
from qactuar.pod.bean import BeanSpec, check_order, spec_from_entry, stop_levels
from qactuar.pod.context import (
    BeanContext,
    PodContext,
    SignalHub,
    UnknownBean,
    set_current_pod,
)
from qactuar.pod.supervision import CANCELLED, RAISED, RETURNED, RestartTracker

EXIT_BEAN_FAILED = 4
# The beans all ended on their own and one's last run raised (a temporary bean's
# exception, say): a script's job failed, so the exit status says so.
EXIT_BEAN_RAISED = 1
CANCEL_GRACE = 1.0
# When a failed bean stops the pod and STOP_WAIT_TIME is None (wait for ever),
# the other beans still get a bounded wait: nobody asked them to stop.
FAILURE_STOP_WAIT = 5.0


class Bean:
    """One bean: its spec, context, current task and history."""

    def __init__(self, pod: Pod, bean_id: int, spec: BeanSpec, level: int) -> None:
        self.pod = pod
        self.id = bean_id
        self.spec = spec
        self.label = spec.label
        self.level = level
        self.context = BeanContext(pod, self)
        self.tracker = RestartTracker(spec)
        self.task: asyncio.Future[Any] | None = None
        self.instance: Any = None
        self.state = "pending"
        self.last_error: str | None = None
        self.last_traceback: str | None = None  # the traceback text of `last_error`
        self.removed = False
        self.cancel_asked = False  # the pod cancelled its task (a stop, remove or cancel)
        self.ready_event = asyncio.Event()
        self.done_event = asyncio.Event()
        self.restart_handle: asyncio.TimerHandle | None = None

    @property
    def name(self) -> str:
        return f"#{self.id} {self.spec.name}"

    @property
    def restarts(self) -> int:
        return self.tracker.count

    def mark_ready(self) -> None:
        if not self.ready_event.is_set():
            self.ready_event.set()
            if self.spec.gate:
                self.pod.logger.info("Bean %s is ready", self.name)

    def done(self) -> bool:
        """Finished for good (no restart to come)."""
        return self.done_event.is_set()

    def cancel(self) -> None:
        """Stop this bean (it is not restarted)."""
        self.pod.cancel_bean(self)

    def result(self) -> Any:
        """What the bean's last run returned (raises what it raised)."""
        if self.task is None or not self.task.done():
            raise asyncio.InvalidStateError(f"bean {self.name} has not finished")
        return self.task.result()

    def __await__(self) -> Any:
        return self.done_event.wait().__await__()

    def __repr__(self) -> str:
        return f"<Bean {self.name} {self.state}>"


class Pod:
    """The beans of one process and their life cycle."""

    def __init__(self, specs: list[BeanSpec], settings: Any = None,
                 stop_wait_time: float | None = None,
                 logger: logging.Logger = server_logger) -> None:
        self.specs = check_order(list(specs))
        self.levels = stop_levels(self.specs)
        self.settings = settings
        self.stop_wait_time = stop_wait_time
        self.logger = logger
        self.beans: dict[int, Bean] = {}
        self.signals = SignalHub()
        self.context = PodContext(self)
        self.stopping = False
        self.exit_status = 0
        self.failed: Bean | None = None
        # Called once when a bean fails the pod (the server stops serving).
        self.on_failure: Callable[[Bean], None] | None = None
        self._next_id = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt = asyncio.Event()  # stop requested or the pod failed
        self._force = asyncio.Event()  # a second stop signal: no more waiting
        self._changed = asyncio.Event()
        self._stop_task: asyncio.Task[None] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the pod has not started"
        return self._loop

    # -- finding beans ---------------------------------------------------------------

    def get_beans(self, bid_or_label: int | str) -> list[Bean]:
        if isinstance(bid_or_label, str):
            found = [b for b in self.beans.values() if b.label == bid_or_label]
            if not found:
                known = sorted({b.label for b in self.beans.values() if b.label})
                raise UnknownBean(f"no bean has the label {bid_or_label!r} (labels: "
                                  f"{', '.join(known) or 'none'})")
            return found
        bean = self.beans.get(bid_or_label)
        if bean is None:
            raise UnknownBean(f"no bean has the id {bid_or_label!r}")
        return [bean]

    # -- starting --------------------------------------------------------------------

    async def start(self) -> None:
        """Start every configured bean in `after` order (returns once all are started)."""
        self._loop = asyncio.get_running_loop()
        set_current_pod(self.context)
        for spec in self.specs:
            bean = self._new_bean(spec)
            if not await self._deps_ready(bean):
                return  # halted: the stop finishes the beans that never started
            self._launch(bean)

    def _new_bean(self, spec: BeanSpec, level: int | None = None) -> Bean:
        if level is None:
            level = self.levels.get(id(spec), 0)
        bean = Bean(self, self._next_id, spec, level)
        self._next_id += 1
        self.beans[bean.id] = bean
        return bean

    def _deps(self, bean: Bean) -> list[Bean]:
        return [b for b in self.beans.values()
                if b.label in bean.spec.after and b is not bean]

    async def _deps_ready(self, bean: Bean) -> bool:
        """Wait until the beans `bean` comes after are ready; False if the pod halts first."""
        deps = [b for b in self._deps(bean) if not b.ready_event.is_set()]
        if deps:
            self.logger.info("Bean %s waits for %s", bean.name, ", ".join(bean.spec.after))
        return await self._all_ready(deps, f"bean {bean.name} comes after it")

    async def _unless_halted(self, awaitable: Any) -> bool:
        work = asyncio.ensure_future(awaitable)
        halt = asyncio.ensure_future(self._halt.wait())
        await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        halt.cancel()
        if not work.done():
            work.cancel()
            return False
        return not self._halt.is_set()

    async def wait_gates(self) -> bool:
        """Wait until every `gate` bean is ready; False if the pod stops or fails first."""
        pending = [b for b in self.beans.values() if b.spec.gate and not b.ready_event.is_set()]
        if pending:
            self.logger.info("Waiting for %d gate bean(s) to be ready: %s", len(pending),
                             ", ".join(b.name for b in pending))
        return await self._all_ready(pending, "gate")

    async def _all_ready(self, beans: list[Bean], why: str) -> bool:
        """Wait until every one of `beans` is ready; False if the pod halts first.  One
        that ends for good before it is ready never will be: it fails the pod."""
        for bean in beans:
            if not await self._unless_halted(_first(bean.ready_event.wait(),
                                                    bean.done_event.wait())):
                return False
            if not bean.ready_event.is_set():
                self._fail(bean, f"it ended before it was ready ({why})")
                return False
        return not self._halt.is_set()

    def _launch(self, bean: Bean) -> None:
        bean.restart_handle = None
        if self.stopping or bean.removed:
            self._finish(bean, CANCELLED)
            return
        bean.tracker.ran()
        loop = self.loop
        task: asyncio.Future[Any]
        try:
            coro, bean.instance = bean.spec.coroutine(bean.context)
        except Exception as exc:  # the class's constructor or the call raised
            task = loop.create_future()
            task.set_exception(exc)
        else:
            task = loop.create_task(coro, name=f"bean {bean.id} {bean.label or ''}".rstrip())
        bean.task = task
        bean.state = "running"
        task.add_done_callback(partial(self._on_task_done, bean))
        if not bean.spec.gate:
            bean.ready_event.set()

    def add_bean(self, core: Any, label: str | None = None, **kwargs: Any) -> Bean:
        """A bean added while the pod runs: checked like a BEANS entry, started now (or
        once the beans it comes `after` are ready)."""
        if self.stopping:
            raise RuntimeError("the pod is stopping: no new beans")
        entry = {"core": core, **kwargs}
        if label is not None:
            entry["label"] = label
        return self.add_spec(spec_from_entry(entry, len(self.beans)))

    def add_spec(self, spec: BeanSpec) -> Bean:
        """Start a checked spec while the pod runs (`add_bean` after its checks)."""
        labels = {b.label for b in self.beans.values()}
        missing = [name for name in spec.after if name not in labels]
        if missing:
            raise UnknownBean(f"bean {spec.name}: after {missing[0]!r}: no bean has that label")
        level = max((b.level + 1 for b in self.beans.values() if b.label in spec.after),
                    default=0)
        bean = self._new_bean(spec, level)
        self.logger.info("Bean %s added", bean.name)

        async def start_when_ready() -> None:
            if await self._deps_ready(bean):
                self._launch(bean)
            elif not bean.done():
                self._finish(bean, CANCELLED)

        if all(b.ready_event.is_set() for b in self._deps(bean)):
            self._launch(bean)
        else:
            self.loop.create_task(start_when_ready())
        return bean

    async def remove_beans(self, bid_or_label: int | str) -> list[Bean]:
        beans = self.get_beans(bid_or_label)
        for bean in beans:
            bean.removed = True
            self.cancel_bean(bean)
        tasks = {b.task for b in beans if b.task is not None and not b.task.done()}
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        for bean in beans:
            if bean.task is not None and not bean.task.done():
                self._abandon(bean)
                self._finish(bean, CANCELLED)
            self.beans.pop(bean.id, None)
            self.signals.drop_owner(bean.id)
            self.logger.info("Bean %s removed", bean.name)
        return beans

    async def cancel_beans(self, bid_or_label: int | str) -> list[Bean]:
        """Cancel the beans with this id or label (kept, not restarted) and wait for them."""
        beans = self.get_beans(bid_or_label)
        for bean in beans:
            self.cancel_bean(bean)
        await self._wait_cancelled(beans)
        return beans

    async def restart_beans(self, bid_or_label: int | str) -> list[Bean]:
        """Cancel the beans with this id or label and run them again (counted as a restart,
        outside the restart limit: it was asked for)."""
        if self.stopping:
            raise RuntimeError("the pod is stopping: no restarts")
        beans = self.get_beans(bid_or_label)
        for bean in beans:
            if bean.spec.form == "coroutine":
                raise ValueError(f"bean {bean.name} is a coroutine object: it runs once and "
                                 "cannot be restarted")
        for bean in beans:
            self.cancel_bean(bean)
        await self._wait_cancelled(beans)
        for bean in beans:
            bean.done_event = asyncio.Event()
            bean.cancel_asked = False
            bean.tracker.count += 1
            self.logger.info("Bean %s restarted on request (restart %d)", bean.name,
                             bean.tracker.count)
            self._launch(bean)
        return beans

    async def _wait_cancelled(self, beans: list[Bean]) -> None:
        tasks = {b.task for b in beans if b.task is not None and not b.task.done()}
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        for bean in beans:
            if bean.task is not None and not bean.task.done():
                self._abandon(bean)
                self._finish(bean, CANCELLED)

    def cancel_bean(self, bean: Bean) -> None:
        if bean.restart_handle is not None:
            bean.restart_handle.cancel()
            bean.restart_handle = None
            self._finish(bean, CANCELLED)
        elif bean.task is not None and not bean.task.done():
            bean.cancel_asked = True
            bean.task.cancel()
        elif not bean.done():
            self._finish(bean, CANCELLED)

    # -- a run ended ---------------------------------------------------------------

    def _on_task_done(self, bean: Bean, task: asyncio.Future[Any]) -> None:
        if task is not bean.task or bean.done():
            return
        if task.cancelled() and (bean.cancel_asked or self.stopping or bean.removed):
            outcome = CANCELLED
        elif task.cancelled() or task.exception() is not None:
            # A CancelledError the pod did not cause (a future the bean awaited was
            # cancelled) is a failure like any other, not a quiet end.
            outcome = RAISED
            exc = _outcome_error(task)
            bean.last_error = f"{type(exc).__name__}: {exc}"
            bean.last_traceback = "".join(traceback.format_exception(exc))
            exception_logger.error("Bean %s raised %s", bean.name, bean.last_error,
                                   exc_info=exc)
        else:
            outcome = RETURNED
        if self.stopping or bean.removed or not bean.tracker.wants_restart(outcome):
            self._finish(bean, outcome)
            return
        if not bean.tracker.allowed():
            self._finish(bean, RAISED)
            self._fail(bean, f"it ended ({outcome}) more than {bean.tracker.describe_limit()}")
            return
        delay = bean.tracker.next_delay()
        bean.state = "restarting"
        self.logger.warning("Bean %s %s; restarting it in %gs (restart %d, policy %s)",
                            bean.name, outcome, delay, bean.tracker.count, bean.spec.restart)
        bean.restart_handle = self.loop.call_later(delay, self._launch, bean)

    def _finish(self, bean: Bean, outcome: str) -> None:
        bean.state = {RETURNED: "finished", RAISED: "failed"}.get(outcome, "cancelled")
        if not bean.done():
            bean.done_event.set()
            self.logger.debug("Bean %s %s", bean.name, bean.state)
        self._changed.set()

    def _fail(self, bean: Bean, why: str) -> None:
        if self.failed is not None:
            return
        self.failed = bean
        self.exit_status = EXIT_BEAN_FAILED
        self.logger.error("Bean %s failed the pod: %s; stopping", bean.name, why)
        self.halt()
        if self.on_failure is not None:
            self.on_failure(bean)

    # -- running until done (the `qactuar pod run` command) ------------------------

    async def run(self) -> int:
        """Start the beans, wait until all have finished or a stop is asked; return the
        exit status (0, EXIT_BEAN_RAISED or EXIT_BEAN_FAILED)."""
        await self.start()
        await self.wait_gates()
        while not (self._halt.is_set() or all(b.done() for b in self.beans.values())):
            self._changed.clear()
            await self._changed.wait()
        if self.failed is not None and self._stop_task is None:
            if self.stop_wait_time is None:
                self.stop_wait_time = FAILURE_STOP_WAIT
            await self.stop("SIGTERM")  # the other beans are asked to stop, as on SIGTERM
        ended_on_their_own = not self._halt.is_set()
        await self.stop(None)
        if (self.exit_status == 0 and ended_on_their_own
                and any(b.state == "failed" for b in self.beans.values())):
            self.exit_status = EXIT_BEAN_RAISED
        return self.exit_status

    def halt(self) -> None:
        """Ask the pod to stop (its owner then calls `stop`); safe before it started."""
        self._halt.set()
        self._changed.set()

    async def halted(self) -> None:
        """Until a stop is asked or a bean fails the pod."""
        await self._halt.wait()

    def request_stop(self, sig: Any = None) -> None:
        """Stop from a signal handler: the first call stops, a second one forces."""
        if self._stop_task is not None:
            if not self._force.is_set():
                self.logger.warning("Received %s again: cancelling the beans now", sig)
                self._force.set()
            return
        if sig is not None:
            self.logger.info("Received %s", sig)
        self._stop_task = self.loop.create_task(self._stop(sig))

    # -- stopping --------------------------------------------------------------------

    async def stop(self, sig: Any = "SIGTERM") -> None:
        """Send `sig` to the beans' callbacks, wait up to STOP_WAIT_TIME, cancel the rest."""
        if self._loop is None:
            return  # never started
        if self._stop_task is None:
            self._stop_task = self.loop.create_task(self._stop(sig))
        await asyncio.shield(self._stop_task)

    async def _stop(self, sig: Any) -> None:
        self.stopping = True
        self.halt()
        loop = self.loop
        wait = self.stop_wait_time
        deadline = None if wait is None else loop.time() + wait
        for bean in self.beans.values():
            if bean.restart_handle is not None:
                bean.restart_handle.cancel()
                self._finish(bean, CANCELLED)
            elif bean.task is None and not bean.done():
                self._finish(bean, CANCELLED)  # still waiting to start: nothing to wait for
        running = [b for b in self.beans.values() if not b.done()]
        if running:
            self.logger.info("Stopping %d bean(s)%s", len(running),
                             "" if wait is None else f", waiting up to {wait:g}s")
        for level in sorted({b.level for b in running}, reverse=True):
            group = [b for b in running if b.level == level and not b.done()]
            if sig is not None:
                await self._until(self.signals.dispatch(sig, {b.id for b in group}), deadline)
            await self._until(asyncio.gather(*(b.done_event.wait() for b in group)), deadline)
        left = [b for b in self.beans.values() if not b.done()]
        if left:
            self.logger.warning("Cancelling %d bean(s) still running: %s", len(left),
                                ", ".join(b.name for b in left))
        grace_end = loop.time() + CANCEL_GRACE
        for level in sorted({b.level for b in left}, reverse=True):
            group = [b for b in left if b.level == level]
            for bean in group:
                self.cancel_bean(bean)
            tasks = {b.task for b in group if b.task is not None and not b.task.done()}
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.0, grace_end - loop.time()))
        for bean in left:
            if bean.task is not None and not bean.task.done():
                self.logger.error("Bean %s ignored cancellation for %gs: abandoning it so the "
                                  "process can exit", bean.name, CANCEL_GRACE)
                self._abandon(bean)
                self._finish(bean, CANCELLED)
        self.logger.info("Pod stopped")

    async def _until(self, awaitable: Any, deadline: float | None) -> None:
        """Await `awaitable` until `deadline` (None: no limit) or a forced stop."""
        work = asyncio.ensure_future(awaitable)
        force = asyncio.ensure_future(self._force.wait())
        timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
        await asyncio.wait({work, force}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        force.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work

    def _abandon(self, bean: Bean) -> None:
        """Leave a task that will not end: the event loop's shutdown must not wait for it."""
        task = bean.task
        if isinstance(task, asyncio.Task):
            task._log_destroy_pending = False  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                asyncio.tasks._unregister_task(task)  # type: ignore[attr-defined]


def _outcome_error(task: asyncio.Future[Any]) -> BaseException:
    """The exception a finished task ended with, its CancelledError included."""
    try:
        task.result()
    except BaseException as exc:  # the value asked for, whatever its kind
        return exc
    raise AssertionError("the task returned")


async def _first(*awaitables: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

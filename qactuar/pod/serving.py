"""The pod inside Qactuar's server: which beans run in which process, and when.

`load_server_beans()` imports and checks the Config's BEANS once, before
any socket is bound (a bad bean is the usual one-line error, exit 2).
`process_pod()` is what a serving process's event loop runs beside the apps:
after lifespan startup it starts the beans, holds the listening socket until
the `gate` beans are ready, and after the connections have drained stops
them (before lifespan shutdown).  It also runs the blocked-loop detector.
Placement: the async model runs every bean; a prefork worker its
`each_worker` beans plus the `one_worker` ones when it hosts them
(`placement.py` decides which worker); a postfork child none.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from qactuar.config import Config, ConfigError
from qactuar.pod.bean import BeanSpec, load_specs
from qactuar.pod.blocked_loop import BlockedLoopDetector
from qactuar.pod.pod import Pod

_loaded: tuple[Config, list[BeanSpec]] | None = None
# Set in the prefork supervisor just before it forks the worker that is to run
# the `one_worker` beans (the child inherits it; the supervisor never reads it).
_hosting_one_worker = False
TAKE_OVER_SIGNAL = signal.SIGUSR1


def load_server_beans(config: Config) -> list[BeanSpec]:
    """The checked specs of `config.BEANS` (imported once per Config)."""
    global _loaded
    if _loaded is None or _loaded[0] is not config:
        specs = load_specs(config.BEANS)
        if config.ASYNCRONOUS_MODEL == "prefork":
            check_placements(specs)
        _loaded = (config, specs)
    return _loaded[1]


# Where a bean may find the beans it starts `after`: in its own process.
_REACHABLE = {"each_worker": {"each_worker"}, "one_worker": {"one_worker", "each_worker"},
              "supervisor": {"supervisor"}}


def check_placements(specs: list[BeanSpec]) -> None:
    """In prefork, `after` must name beans that run in the same process."""
    for spec in specs:
        for label in spec.after:
            for other in (s for s in specs if s.label == label):
                if other.placement not in _REACHABLE[spec.placement]:
                    raise ConfigError(f"bean {spec.name}: after {label!r}, but that bean's "
                                      f"placement is {other.placement} and this one's "
                                      f"{spec.placement}: they run in different processes")


def set_hosting_one_worker(hosting: bool) -> None:
    global _hosting_one_worker
    _hosting_one_worker = hosting


def process_pod(config: Config, model: str, lifespan: bool,
                logger: logging.Logger) -> ServerPod | None:
    """The pod of this serving process, or None when it has nothing to run."""
    specs = load_server_beans(config) if config.BEANS and lifespan else []
    one_worker: list[BeanSpec] = []
    if model == "prefork":
        one_worker = [s for s in specs if s.placement == "one_worker"]
        mine = [s for s in specs if s.placement == "each_worker"
                or (s.placement == "one_worker" and _hosting_one_worker)]
    elif model == "async":
        mine = specs
    else:
        mine = []
    if not mine and not one_worker and not config.BLOCKED_LOOP_THRESHOLD:
        return None
    return ServerPod(config, mine, one_worker if not _hosting_one_worker else [], logger)


class ServerPod:
    """The beans (and the blocked-loop detector) of one serving process's loop."""

    def __init__(self, config: Config, specs: list[BeanSpec], standby: list[BeanSpec],
                 logger: logging.Logger) -> None:
        self.config = config
        self.pod = Pod(specs, settings=config, stop_wait_time=config.STOP_WAIT_TIME,
                       logger=logger)
        self.standby = standby  # one_worker beans this worker runs if it is asked to
        self.logger = logger
        self.detector: BlockedLoopDetector | None = None

    @property
    def exit_status(self) -> int:
        return self.pod.exit_status

    def attach(self, mounts: list[Any]) -> None:
        """Put the pod's context in every app's lifespan state (`scope["state"]["pod"]`)."""
        if not self.pod.specs and not self.standby:
            return  # only the blocked-loop detector runs here: no pod to show the apps
        for mount in mounts:
            mount.lifespan.state["pod"] = self.pod.context

    async def start(self, stop_serving: Callable[[], None],
                    stopped: asyncio.Event) -> int | None:
        """Start the beans and wait for the gate beans; None when serving may begin,
        else the exit status (a failed bean, or 0 when a signal came first)."""
        loop = asyncio.get_running_loop()
        if self.config.BLOCKED_LOOP_THRESHOLD:
            self.detector = BlockedLoopDetector(loop, self.config.BLOCKED_LOOP_THRESHOLD,
                                                self.logger)
            self.detector.start()
        self.pod.on_failure = lambda bean: stop_serving()
        if self.standby:
            loop.add_signal_handler(TAKE_OVER_SIGNAL, self._take_over)
        starting = asyncio.ensure_future(self._start())
        halted = asyncio.ensure_future(stopped.wait())
        await asyncio.wait({starting, halted}, return_when=asyncio.FIRST_COMPLETED)
        halted.cancel()
        if starting.done() and starting.result():
            return None
        starting.cancel()
        return self.pod.exit_status

    async def _start(self) -> bool:
        await self.pod.start()
        return await self.pod.wait_gates() and self.pod.failed is None

    def _take_over(self) -> None:
        """The supervisor moved the one_worker beans here (their worker died)."""
        specs, self.standby = self.standby, []
        asyncio.get_running_loop().remove_signal_handler(TAKE_OVER_SIGNAL)
        if self.pod.stopping or not specs:
            return
        self.logger.info("Worker takes over %d one_worker bean(s)", len(specs))
        for spec in specs:
            self.pod.add_spec(spec)

    async def stop(self, force: asyncio.Event | None = None) -> None:
        """Stop the beans; a second stop signal (`force`) cancels them at once."""
        forcing = None
        if force is not None:
            forcing = asyncio.ensure_future(force.wait())
            forcing.add_done_callback(
                lambda waited: waited.cancelled() or self.pod.request_stop("SIGTERM"))
        try:
            await self.pod.stop("SIGTERM")
        finally:
            if forcing is not None:
                forcing.cancel()
        if self.detector is not None:
            self.detector.stop()

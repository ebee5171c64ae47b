"""One `qactuar pod run` process: logging, the event loop, signals, then the pod.

Turns PodSettings into a running Pod on a fresh loop (asyncio or uvloop),
routes SIGINT/SIGTERM to the pod's stop, and returns the exit status.  Bean
cores are imported before the loop starts, so a bad one is a one-line error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from qactuar.config import ConfigError
from qactuar.logs import configure_logging, default_log_config, server_logger
from qactuar.models.aio import retire_signal_handlers
from qactuar.pod.bean import load_specs
from qactuar.pod.blocked_loop import BlockedLoopDetector
from qactuar.pod.config import PodSettings
from qactuar.pod.context import set_current_pod
from qactuar.pod.pod import Pod


def new_loop_factory(loop_type: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop_type in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError:
            if loop_type == "uvloop":
                raise ConfigError("pod config key LOOP_TYPE = 'uvloop': uvloop is not "
                                  "installed") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def configure_pod_logging(level: str) -> None:
    logs = default_log_config()
    for name in ("qt_server", "qt_child"):
        logs["loggers"][name]["level"] = level
    configure_logging(logs)


def run_pod(settings: PodSettings) -> int:
    """Run the beans until they finish or a signal stops them; return the exit status."""
    if not settings.BEANS:
        raise ConfigError("no beans to run: give BEANS in a config file (-c) or bean paths "
                          "(package.module.function:key=value) on the command line")
    level = "DEBUG" if settings.DEBUG else settings.LOG_LEVEL
    configure_pod_logging(level)
    specs = load_specs(settings.BEANS)
    new_loop = new_loop_factory(settings.LOOP_TYPE)
    pod = Pod(specs, settings=settings, stop_wait_time=settings.STOP_WAIT_TIME)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.set_debug(settings.DEBUG)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, pod.request_stop, signal.Signals(signum).name)
        detector = None
        if settings.BLOCKED_LOOP_THRESHOLD:
            detector = BlockedLoopDetector(loop, settings.BLOCKED_LOOP_THRESHOLD)
            detector.start()
        server_logger.info("Pod starting %d bean(s) (%s loop, pid %d)", len(specs),
                           "uvloop" if type(loop).__module__.startswith("uvloop")
                           else "asyncio", os.getpid())
        try:
            return await pod.run()
        finally:
            # Done: a signal in the last moments must not kill a process exiting cleanly.
            retire_signal_handlers(loop)
            if detector is not None:
                detector.stop()
            set_current_pod(None)

    with asyncio.Runner(loop_factory=new_loop, debug=settings.DEBUG) as runner:
        status = runner.run(main())
    logging.shutdown()
    return status

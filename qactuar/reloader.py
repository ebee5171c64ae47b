"""`--reload` (development): run the server as a child process and restart it whenever
a watched file changes, with `watchfiles` (the `reload` extra).

The reloader process never imports the app: it watches `--reload-dir`
directories (default: the current one) for files matching `--reload-include`
patterns (default `*.py`) and not `--reload-exclude` ones, logs the first start
and every restart with the files that changed, stops the child with SIGTERM
(graceful, as in production) and starts a fresh `python -m qactuar` with the
same arguments minus the reload flags.  SIGINT/SIGTERM stop the child and then
the reloader.  A child that exits on its own (a syntax error) is restarted at the
next change.  Not for production: prefork's SIGHUP reloads code there.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qactuar.errors import ConfigError
from qactuar.logs import server_logger

RELOAD_FLAGS = ("--reload-dir", "--reload-include", "--reload-exclude")
DEFAULT_INCLUDE = ("*.py",)
DEFAULT_EXCLUDE = (".*", "*~", "__pycache__", "*.pyc")
STOP_GRACE = 10.0  # seconds a child gets to stop before it is killed


def child_arguments(argv: Sequence[str]) -> list[str]:
    """The command-line arguments without the reload flags (and their values)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--reload":
            continue
        if arg in RELOAD_FLAGS:
            skip = True
            continue
        if arg.startswith(tuple(flag + "=" for flag in RELOAD_FLAGS)):
            continue
        kept.append(arg)
    return kept


class WatchFilter:
    """Which changed paths restart the server (a watchfiles `watch_filter`)."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = tuple(include) or DEFAULT_INCLUDE
        self.exclude = tuple(exclude) or DEFAULT_EXCLUDE

    def __call__(self, change: Any, path: str) -> bool:
        parts = Path(path).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in self.exclude):
            return False
        name = parts[-1] if parts else path
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.include)


class Reloader:
    def __init__(self, argv: Sequence[str], dirs: Sequence[str], watch_filter: WatchFilter
                 ) -> None:
        self.command = [sys.executable, "-m", "qactuar", *child_arguments(argv)]
        self.dirs = [str(Path(d).resolve()) for d in dirs] or [str(Path.cwd())]
        self.watch_filter = watch_filter
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        try:
            import watchfiles
        except ImportError:
            raise ConfigError("--reload needs watchfiles: pip install 'qactuar[reload]'"
                              ) from None
        for directory in self.dirs:
            if not os.path.isdir(directory):
                raise ConfigError(f"--reload-dir {directory}: not a directory")
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop.set())
        server_logger.info("Reloader pid %d: watching %s for %s (not %s); starting the server",
                           os.getpid(), ", ".join(self.dirs),
                           ", ".join(self.watch_filter.include),
                           ", ".join(self.watch_filter.exclude))
        self._start()
        for changes in watchfiles.watch(*self.dirs, watch_filter=self.watch_filter,
                                        stop_event=self.stop, raise_interrupt=False):
            changed = sorted({os.path.relpath(path) for _change, path in changes})
            server_logger.info("Reloader: %s changed; restarting the server",
                               ", ".join(changed))
            self._stop_child()
            self._start()
        return self._stop_child()

    def _start(self) -> None:
        self.child = subprocess.Popen(self.command)

    def _stop_child(self) -> int:
        child, self.child = self.child, None
        if child is None:
            return 0
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                server_logger.warning("Reloader: the server did not stop within %gs; "
                                      "killing it", STOP_GRACE)
                child.kill()
                child.wait()
        elif child.returncode:
            server_logger.info("Reloader: the server had exited with status %d",
                               child.returncode)
        return 0 if child.returncode in (0, -signal.SIGTERM) else child.returncode


def run_with_reload(argv: Sequence[str], dirs: Sequence[str], include: Sequence[str],
                    exclude: Sequence[str], logs: dict[str, Any]) -> int:
    """Serve with restarts on changes until SIGINT/SIGTERM; the exit status."""
    from qactuar.logs import configure_logging

    configure_logging(logs)
    return Reloader(argv, dirs, WatchFilter(include, exclude)).run()

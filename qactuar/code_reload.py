"""Loading the app's code afresh in a running process (a prefork SIGHUP).

`forget_app_modules` drops the modules that are the user's code from
`sys.modules` (everything imported from outside the standard library,
site-packages and qactuar itself, and never an extension module), so the next
import reads the files as they are now.  `describe_code` says which code was
loaded: each app module's file, its modification time and a short hash of its
contents, for the log line an operator checks after a deploy.

The prefork supervisor imports afresh *before* it forks new workers, so a
broken edit is found there, logged, and the old workers keep serving; the
workers it forks afterwards serve the new code.  This module never forks.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path

import qactuar


def _library_dirs() -> tuple[str, ...]:
    """Where code that is not the user's lives: the interpreter's and installed packages'."""
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                     "platlib")}
    paths.update({sys.prefix, sys.base_prefix, sys.exec_prefix})
    paths.add(str(Path(qactuar.__file__).resolve().parent))
    return tuple(sorted(os.path.join(os.path.realpath(p), "") for p in paths if p))


def is_user_module(filename: str | None, library_dirs: tuple[str, ...]) -> bool:
    """Whether a module loaded from `filename` is the user's code (reloadable)."""
    if not filename or not filename.endswith(".py"):
        return False  # built-in, frozen, namespace or an extension module
    real = os.path.realpath(filename)
    return not real.startswith(library_dirs)


def forget_app_modules() -> list[str]:
    """Drop the user's modules from `sys.modules`; return their names."""
    library_dirs = _library_dirs()
    names = [name for name, module in list(sys.modules.items())
             if is_user_module(getattr(module, "__file__", None), library_dirs)]
    for name in names:
        del sys.modules[name]
    importlib.invalidate_caches()
    return names


def describe_code(targets: Iterable[str]) -> str:
    """"module (path, modified TIME, sha256 HASH)" for each "module:attr" target."""
    described = []
    for target in targets:
        module_name = target.partition(":")[0]
        module = sys.modules.get(module_name)
        filename = getattr(module, "__file__", None)
        if not filename or not os.path.isfile(filename):
            described.append(module_name)
            continue
        data = Path(filename).read_bytes()
        modified = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(filename).st_mtime))
        digest = hashlib.sha256(data).hexdigest()[:12]
        described.append(f"{module_name} ({filename}, modified {modified}, sha256 {digest})")
    return "; ".join(described) or "no app module (objects given to run())"



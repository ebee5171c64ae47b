"""Which modules may run compiled, the switch back to their `.py` files, and what is compiled.

`COMPILED_MODULES` is the one list of the hot-path modules that `setup.py` compiles with
Cython (pure Python mode: the `.py` file is the source, a `.pxd` beside it adds C types).
`setup.py` loads this file on its own, without importing the qactuar package (whose
dependencies need not be installed at build time), so this module imports only the
standard library.

`QACTUAR_PURE_PYTHON=1` at run time makes qactuar's modules load from their `.py` files
even where a compiled module sits beside them; prefork and postfork children are forked
from the process that installed the finder (and inherit the environment), so the switch
holds for them too.  This module must not import anything from qactuar: it runs before
any other qactuar module is imported.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

COMPILED_MODULES = (
    "qactuar.admin.stats",
    "qactuar.asgi.http_stream",
    "qactuar.asgi.request_head",
    "qactuar.asgi.router",
    "qactuar.limits",
    "qactuar.load.flow",
    "qactuar.load.histogram",
    "qactuar.load.http1_engine",
    "qactuar.load.http2_engine",
    "qactuar.load.runner",
    "qactuar.load.stats",
    "qactuar.load.ws_engine",
    "qactuar.protocols.h2_connection",
    "qactuar.protocols.h2_fields",
    "qactuar.protocols.hpack_codec",
    "qactuar.protocols.http1",
    "qactuar.protocols.http2",
    "qactuar.server_state",
)

# Run time: load the .py files even where compiled modules exist.
PURE_PYTHON_ENV_VAR = "QACTUAR_PURE_PYTHON"
# Build time (read by setup.py): do not compile, install the pure-Python package.
NO_EXTENSIONS_ENV_VAR = "QACTUAR_NO_EXTENSIONS"


def flag_is_set(name: str) -> bool:
    """Whether the environment variable `name` is set to something other than "", 0 or no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PurePythonFinder:
    """Finds `qactuar.*` modules as their `.py` source file, ahead of the normal path finder.

    A meta path finder by its `find_spec` method: importlib.abc (and the
    importlib.resources it imports) would add milliseconds to every start."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("qactuar.") or path is None:
            return None
        filename = fullname.rpartition(".")[2] + ".py"
        for directory in path:
            source = os.path.join(directory, filename)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        # A subpackage (or no such module): the normal finders handle it.
        return None


def use_pure_python_if_asked() -> None:
    """Install the `.py` finder when QACTUAR_PURE_PYTHON is set (once; called by __init__)."""
    if flag_is_set(PURE_PYTHON_ENV_VAR) and not any(
            isinstance(finder, PurePythonFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, PurePythonFinder())


def is_compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from an extension module (a `.so`/`.pyd`), not a `.py`."""
    spec = module.__spec__
    if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        return True
    filename = getattr(module, "__file__", None) or ""
    return filename.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> list[str]:
    """The names in COMPILED_MODULES that are running compiled in this process."""
    return [name for name in COMPILED_MODULES if is_compiled(importlib.import_module(name))]


def describe_build() -> str:
    """For `--version`: "compiled: http1, ..." or "pure Python" (and what is not compiled)."""
    compiled = compiled_modules()
    short = {name: name.rpartition(".")[2] for name in COMPILED_MODULES}
    if not compiled:
        return "pure Python"
    text = "compiled: " + ", ".join(sorted(short[name] for name in compiled))
    pure = sorted(short[name] for name in COMPILED_MODULES if name not in compiled)
    if pure:
        text += "; pure Python: " + ", ".join(pure)
    return text

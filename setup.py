"""Compile the hot-path modules with Cython; everything else is in pyproject.toml.

The modules in qactuar/_build.py's COMPILED_MODULES are compiled from their own `.py`
files (Cython's pure Python mode, typed by a `.pxd` beside them).  Compiling is an
optional speed-up: without Cython, without a working C compiler, after a compile error,
or with QACTUAR_NO_EXTENSIONS=1, the build prints one warning line, leaves no compiled
module behind, and installs the pure-Python package.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent

# Cython compiler directives for every compiled module (one place to add them).
COMPILER_DIRECTIVES: dict[str, Any] = {"language_level": 3}


def load_build_module() -> ModuleType:
    """qactuar/_build.py on its own: the qactuar package (and its dependencies) is not
    importable at build time, and _build.py imports only the standard library."""
    spec = importlib.util.spec_from_file_location("_qactuar_build", ROOT / "qactuar" / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = load_build_module()


def source_of(module_name: str) -> str:
    """The `.py` file of a dotted module name, relative to the project root."""
    return os.path.join(*module_name.split(".")) + ".py"


class OptionalBuildExt(build_ext):
    """build_ext that turns the `.py` sources into C with Cython, and never fails the build."""

    def run(self) -> None:
        try:
            if BUILD.flag_is_set(BUILD.NO_EXTENSIONS_ENV_VAR):
                raise BuildSkipped(f"{BUILD.NO_EXTENSIONS_ENV_VAR} is set")
            generate_c(self.extensions)
            super().run()
        except Exception as exc:  # any failure means "install pure Python"
            self.remove_outputs()
            reason = " ".join(str(exc).split()) or type(exc).__name__
            print(f"qactuar: building without compiled modules: {reason}; "
                  "the pure-Python modules are used", file=sys.stderr, flush=True)

    def remove_outputs(self) -> None:
        """Remove compiled modules this build (or an earlier one) left where it would install
        them: a half-built or stale one would shadow its `.py` file."""
        for extension in self.extensions:
            output = Path(self.get_ext_fullpath(extension.name))
            output.unlink(missing_ok=True)


class BuildSkipped(Exception):
    """Compiling is not wanted or not possible; the message says why."""


def generate_c(extensions: list[Extension]) -> None:
    """Cython turns each extension's `.py` source into C (again only where the `.py` or its
    `.pxd` changed); the extensions then compile that C.  The Extension objects are kept:
    build_ext has already prepared them."""
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise BuildSkipped(f"Cython is not installed ({exc})") from None
    try:
        generated = cythonize(extensions, compiler_directives=COMPILER_DIRECTIVES,
                              build_dir=os.path.join("build", "cython"), quiet=True)
    except Exception as exc:  # Cython's own errors are printed above; name what failed
        raise BuildSkipped(f"Cython could not compile {exc} (errors above)") from exc
    sources = {extension.name: extension.sources for extension in generated}
    for extension in extensions:
        extension.sources = sources[extension.name]


setup(
    ext_modules=[Extension(name, [source_of(name)]) for name in BUILD.COMPILED_MODULES],
    cmdclass={"build_ext": OptionalBuildExt},
)

"""The interpreters of `--pythons 3.12,3.13`: a venv per version with qactuar compiled
(and the peers that run under each version too, servers.PEERS_PER_PYTHON).

Each version X.Y gets `benchmarks/build/venv-X.Y`, made from pyenv's Python X.Y
(as `.ci/run` finds it: `$(pyenv root)/versions/X.Y*/bin/python3`, else
`pythonX.Y` on PATH; pyenv's bare shim for a version may exist and still fail to
run, so each candidate is run once), with `pip install -e .` (which compiles the
hot-path modules in place: the .so files carry the version in their name, so
the builds of several versions sit side by side) and the app frameworks pinned
in requirements.txt.  A venv that already imports qactuar's compiled server is
reused while no compiled module of its version is older than its source (else
`pip install -e .` runs again).  This module must not run benchmarks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.environment import pinned

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(__file__).resolve().parent / "build"
# What the qactuar servers import in every scenario beyond qactuar's own dependencies.
APP_PACKAGES = ("starlette", "fastapi", "django")
# Run by a venv's python: its version, whether qactuar's server is compiled there (a
# hot-path module loaded from a .so, not from its .py), and its extension suffix.
_CHECK = ("import platform, importlib.machinery as m, qactuar.cli, qactuar.models.aio, "
          "qactuar.protocols.http1 as h; print(platform.python_version(), "
          "h.__file__.endswith(('.so', '.pyd')), m.EXTENSION_SUFFIXES[0])")

# Run by a venv's python with a distribution's name and pinned version ("" for any):
# exits 0 when that version of it is installed.
_HAS_VERSION = ("import importlib.metadata as m, sys\n"
                "try:\n    found = m.version(sys.argv[1])\n"
                "except m.PackageNotFoundError:\n    sys.exit(1)\n"
                "sys.exit(bool(sys.argv[2]) and found != sys.argv[2])")


class PythonMissing(Exception):
    """A requested version cannot be run or set up; the message is one line for the user."""


@dataclass(frozen=True)
class QactuarPython:
    version: str  # "3.12" as asked
    full_version: str  # "3.12.1" as it runs
    python: str  # the venv's interpreter


def parse_versions(text: str) -> list[str]:
    """"3.12,3.13" -> ["3.12", "3.13"]; SystemExit (status 2 by argparse's convention)
    with one line for anything that is not X.Y."""
    versions = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in versions if not re.fullmatch(r"3\.\d{1,2}", v)]
    if bad or not versions:
        raise SystemExit(f"benchmarks: --pythons takes versions like 3.12,3.13, "
                         f"not {text!r}")
    return list(dict.fromkeys(versions))


def find_interpreter(version: str) -> str | None:
    """A Python X.Y that runs: pyenv's first, then pythonX.Y on PATH."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        roots.insert(0, done.stdout.strip())
    for root in filter(None, dict.fromkeys(roots)):
        folder = Path(root) / "versions"
        if folder.is_dir():
            candidates += [str(p / "bin" / "python3") for p in sorted(folder.iterdir())
                           if p.name == version or p.name.startswith(version + ".")]
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        try:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout.strip() == str(
                tuple(int(n) for n in version.split("."))):
            return candidate
    return None


def _checked(python: Path) -> tuple[str, bool] | None:
    """(version, compiled) of a venv's python that imports qactuar's server, else None."""
    if not python.exists():
        return None
    try:
        done = subprocess.run([str(python), "-c", _CHECK], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    version, compiled, suffix = done.stdout.split()
    return version, compiled == "True" and not stale_modules(suffix)


def stale_modules(suffix: str) -> list[Path]:
    """The compiled modules with extension `suffix` older than their .py or any .pxd (as
    tests/conftest.py checks for the driver's own build): they would run old code."""
    from qactuar._build import COMPILED_MODULES

    sources = [ROOT.joinpath(*name.split(".")).with_suffix(".py") for name in COMPILED_MODULES]
    layouts = [source.with_suffix(".pxd") for source in sources
               if source.with_suffix(".pxd").exists()]
    newest_layout = max((layout.stat().st_mtime for layout in layouts), default=0.0)
    stale = []
    for source in sources:
        compiled = source.with_name(source.stem + suffix)
        if compiled.exists() and compiled.stat().st_mtime < max(source.stat().st_mtime,
                                                                 newest_layout):
            stale.append(compiled)
    return stale


def ensure(version: str, install: bool = True,
           peers: tuple[str, ...] = ()) -> QactuarPython:
    """The venv of Python `version` with qactuar compiled and up to date with the source,
    and the peer server packages `peers` (pinned) installed: made, rebuilt or reused;
    PythonMissing when the interpreter is not there or the venv cannot be set up."""
    venv = BUILD / f"venv-{version}"
    python = venv / "bin" / "python"
    found = _checked(python)
    if found is not None and found[1]:
        _ensure_peers(version, python, peers, install)
        return QactuarPython(version, found[0], str(python))
    interpreter = find_interpreter(version)
    if interpreter is None:
        raise PythonMissing(f"benchmarks: --pythons {version}: no Python {version} found "
                            f"(pyenv install {version}, or python{version} on PATH); "
                            "its rows are left out")
    if not install:
        raise PythonMissing(f"benchmarks: --pythons {version}: {venv} has no compiled "
                            "qactuar and --no-install was given; its rows are left out")
    print(f"setting up {venv} (Python {version}: {interpreter}; pip install -e . compiles "
          "qactuar, a few minutes)", flush=True)
    requirements = [pinned().get(name, name) for name in APP_PACKAGES]
    steps = [[interpreter, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *requirements]]
    for step in steps:
        _run_step(version, step, " ".join(step[1:4]))
    found = _checked(python)
    if found is None or not found[1]:
        raise PythonMissing(f"benchmarks: --pythons {version}: {venv} does not import "
                            "qactuar's compiled server after pip install -e .")
    _ensure_peers(version, python, peers, install)
    return QactuarPython(version, found[0], str(python))


def _ensure_peers(version: str, python: Path, packages: tuple[str, ...],
                  install: bool) -> None:
    """pip install the `packages` whose pinned version `python` does not have installed
    (asked of the distribution's metadata: an uninstall can leave a folder that imports)."""
    requirements = {name: pinned().get(name, name) for name in packages}
    missing = [name for name, line in requirements.items()
               if subprocess.run([str(python), "-c", _HAS_VERSION, name,
                                  line.partition("==")[2]], capture_output=True,
                                 cwd=ROOT).returncode != 0]
    if not missing:
        return
    if not install:
        raise PythonMissing(f"benchmarks: --pythons {version}: {', '.join(missing)} not "
                            "installed there and --no-install was given; its rows are left out")
    _run_step(version, [str(python), "-m", "pip", "install", "-q",
                        *(requirements[n] for n in missing)], f"pip install {' '.join(missing)}")


def _run_step(version: str, step: list[str], what: str) -> None:
    """Run one set-up command; PythonMissing with its last output line if it fails."""
    done = subprocess.run(step, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise PythonMissing(f"benchmarks: --pythons {version}: {what} failed ({last})")

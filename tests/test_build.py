"""The compiled hot path and its pure-Python fallback, seen from real processes.

- the test environment runs every module of COMPILED_MODULES compiled (unless this is a
  pure-Python run, or the build was told to skip compiling);
- QACTUAR_PURE_PYTHON=1 makes `--version`, and a server that serves, use the `.py` files;
- a build whose C compiler fails still succeeds, says so in one line, and leaves no
  compiled module behind; so does QACTUAR_NO_EXTENSIONS=1.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import qactuar
from conftest import TESTS_DIR, ServerProcess, child_env, run_qactuar
from qactuar._build import (
    COMPILED_MODULES,
    NO_EXTENSIONS_ENV_VAR,
    PURE_PYTHON_ENV_VAR,
    flag_is_set,
)

REPO_DIR = TESTS_DIR.parent
WARNING = "qactuar: building without compiled modules: "
PURE_RUN = flag_is_set(PURE_PYTHON_ENV_VAR)

# A child prints, for each module of COMPILED_MODULES, the file it was loaded from.
PRINT_MODULE_FILES = (
    "import importlib, json\n"
    "from qactuar._build import COMPILED_MODULES\n"
    "print(json.dumps({name: importlib.import_module(name).__file__ "
    "for name in COMPILED_MODULES}))\n"
)


def module_files(**env: str) -> dict[str, str]:
    """Which file each compiled-able module is loaded from, in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", PRINT_MODULE_FILES], env=child_env(**env),
                            cwd=TESTS_DIR, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def is_extension(filename: str) -> bool:
    return filename.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def short_names() -> list[str]:
    return sorted(name.rpartition(".")[2] for name in COMPILED_MODULES)


# -- (a) what the tests run is what users run ----------------------------------------


def test_the_hot_path_runs_compiled_in_the_test_environment() -> None:
    files = module_files()
    if PURE_RUN:
        # A pure-Python run: the child inherits the switch, and nothing compiled is loaded.
        assert not any(is_extension(path) for path in files.values()), files
        return
    pure = {name: path for name, path in files.items() if not is_extension(path)}
    if pure and flag_is_set(NO_EXTENSIONS_ENV_VAR) and not os.environ.get("CI"):
        pytest.skip(f"{NO_EXTENSIONS_ENV_VAR} is set: installed without compiled modules")
    assert not pure, (
        f"running from .py, not compiled: {sorted(pure)}.  Run `pip install -e .` (with -v "
        f"it shows why compiling failed); to build and test without compiling on purpose, "
        f"set {NO_EXTENSIONS_ENV_VAR}=1 for both (never in CI)")
    result = run_qactuar("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"qactuar {qactuar.__version__} (compiled: {', '.join(short_names())})")


# -- (b) QACTUAR_PURE_PYTHON=1 ---------------------------------------------------------


def test_pure_python_switch_loads_the_py_files() -> None:
    files = module_files(**{PURE_PYTHON_ENV_VAR: "1"})
    for name, path in files.items():
        expected = REPO_DIR.joinpath(*name.split(".")).with_suffix(".py")
        assert Path(path) == expected, (name, path)


def test_pure_python_version_says_pure_python() -> None:
    result = run_qactuar("--version", env=child_env(**{PURE_PYTHON_ENV_VAR: "1"}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"qactuar {qactuar.__version__} (pure Python)"


@pytest.mark.parametrize("model_args", [[], ["--model", "prefork", "--workers", "1"]],
                         ids=["async", "prefork"])
def test_a_pure_python_server_serves_from_the_py_files(model_args: list[str]) -> None:
    # The app answers with the file the serving process loaded http1 from.
    server = ServerProcess(["apps.module_files:app", *model_args,
                            "--host", "127.0.0.1", "--port", "0"],
                           env={PURE_PYTHON_ENV_VAR: "1"})
    try:
        response = httpx.get(f"{server.url}/", timeout=10)
        assert response.status_code == 200
        served_by = response.json()
        if model_args:  # served by a forked worker, which kept the switch
            assert served_by["pid"] != server.proc.pid
        assert served_by["qactuar.protocols.http1"] == str(REPO_DIR / "qactuar" / "protocols"
                                                           / "http1.py")
    finally:
        assert server.stop() == 0


# -- (c) a build that cannot compile still installs ------------------------------------


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """The files a build reads, copied; with Cython's C output when a build left it (so only
    the C compiler runs: Cython regenerates C only for a newer .py or .pxd)."""
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_DIR / name, copy / name)
    shutil.copytree(REPO_DIR / "qactuar", copy / "qactuar",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c"))
    if (REPO_DIR / "build" / "cython").is_dir():
        shutil.copytree(REPO_DIR / "build" / "cython", copy / "build" / "cython")
    return copy


def build_in_place(source: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QACTUAR_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"],
                          cwd=source, env=full_env, capture_output=True, text=True,
                          timeout=110)


def compiled_files(source: Path) -> list[Path]:
    return [path for suffix in importlib.machinery.EXTENSION_SUFFIXES
            for path in source.rglob(f"*{suffix}")]


def warning_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith(WARNING)]


@pytest.mark.timeout(120)
def test_a_failing_c_compiler_installs_pure_python(source_copy: Path) -> None:
    pytest.importorskip("Cython", reason="the test dependencies include Cython")
    result = build_in_place(source_copy, CC="false")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = warning_lines(result)
    assert len(lines) == 1, output
    assert lines[0].endswith("; the pure-Python modules are used")
    assert "false" in lines[0], lines[0]  # the reason names the failed compiler command
    assert compiled_files(source_copy) == []


def test_no_extensions_skips_compiling(source_copy: Path) -> None:
    # Even a compiled module an earlier build left in place is removed: it would shadow
    # the .py file that this build says is used.
    http1 = source_copy / "qactuar" / "protocols" / "http1.py"
    leftover = http1.with_name("http1" + importlib.machinery.EXTENSION_SUFFIXES[0])
    leftover.write_bytes(b"left by an earlier build")
    result = build_in_place(source_copy, **{NO_EXTENSIONS_ENV_VAR: "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert warning_lines(result) == [
        f"{WARNING}{NO_EXTENSIONS_ENV_VAR} is set; the pure-Python modules are used"]
    assert compiled_files(source_copy) == []


@pytest.mark.timeout(120)
def test_a_cython_error_installs_pure_python(source_copy: Path) -> None:
    pytest.importorskip("Cython", reason="the test dependencies include Cython")
    (source_copy / "qactuar" / "server_state.pxd").write_text("cdef class (:\n")
    result = build_in_place(source_copy)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert warning_lines(result) == [
        f"{WARNING}Cython could not compile qactuar/server_state.py (errors above); "
        "the pure-Python modules are used"], output
    assert compiled_files(source_copy) == []

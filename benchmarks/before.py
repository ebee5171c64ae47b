"""`--before REF`: qactuar as it was at a git commit, beside the working tree's, in one run.

A change to the hot path is judged before/after on the same machine in the same
run: the driver alternates servers within each round (A B A B ...), so the
host's drifts fall on both alike.  Instruction counts (callgrind) are steadier
but can mislead: half of a loaded hello-world server's CPU is in the kernel,
and a change can cut instructions and not time (docs/benchmarks.md).

The commit is checked out, detached, in `benchmarks/build/before-<sha>` (kept
and reused), and its hot path compiled there for each interpreter that runs a
qactuar row: the driver's own (or --qactuar-python) and each --pythons version's
venv, which gets Cython and setuptools for it.  Every qactuar row then gets a
twin, "qactuar [<sha>]" or "qactuar (3.12) [<sha>]", that imports qactuar and
the benchmark apps from the worktree (its working directory, and first on
PYTHONPATH).  This module must not run benchmarks.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from benchmarks.servers import SERVERS, Variant

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(__file__).resolve().parent / "build"
BUILD_REQUIREMENTS = ("Cython>=3.1,<4", "setuptools>=68")


class BeforeFailed(Exception):
    """The commit cannot be checked out or built; the message is one line for the user."""


def _checked(command: list[str], what: str, cwd: Path = ROOT) -> str:
    """Run one command and return its output; BeforeFailed with its last line if it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise BeforeFailed(f"benchmarks: --before: {what}: {last}")
    return done.stdout.strip()


def _git(*args: str) -> str:
    return _checked(["git", *args], f"git {' '.join(args)}")


def checkout(ref: str, where: Path = BUILD) -> tuple[str, Path]:
    """The short commit id of `ref` and a worktree holding it, in folder `where` (made on
    first use)."""
    commit = _git("rev-parse", "--verify", "--short=10", f"{ref}^{{commit}}")
    tree = where / f"before-{commit}"
    if not (tree / "qactuar" / "__init__.py").exists():
        _git("worktree", "prune")  # a deleted folder's stale entry would block the add
        _git("worktree", "add", "--detach", "--force", str(tree), commit)
    return commit, tree


def build(tree: Path, python: str, install: bool) -> None:
    """Compile the worktree's hot path in place for `python` (needs Cython there)."""
    has_tools = subprocess.run([python, "-c", "import Cython, setuptools"],
                               capture_output=True).returncode == 0
    if not has_tools:
        if not install:
            raise BeforeFailed(f"benchmarks: --before: {python} has no Cython to build "
                                 "the commit with (and --no-install was given)")
        _checked([python, "-m", "pip", "install", "--quiet", *BUILD_REQUIREMENTS],
                 f"pip install under {python} failed")
    _checked([python, "setup.py", "--quiet", "build_ext", "--inplace", "-j", "2"],
             f"building the commit under {python} failed", cwd=tree)


def row_name(name: str, commit: str) -> str:
    """The twin of row `name` at `commit`: "qactuar (3.12) [0123456789]"."""
    return f"{name} [{commit}]"


def add_twin(name: str, commit: str, tree: Path) -> str:
    """Register the twin of qactuar row `name` running the worktree's code; its name."""
    spec = SERVERS[name]
    twin = row_name(name, commit)
    SERVERS[twin] = replace(spec, name=twin, family=spec.base, source=tree)
    return twin


def add_rows(ref: str, rows: dict[str, str], install: bool) -> tuple[str, dict[str, str]]:
    """Check out and build `ref`, and register a twin for each qactuar row of `rows`
    (row name -> interpreter): the commit, and twin name -> what the report says of it."""
    commit, tree = checkout(ref)
    subject = _git("log", "-1", "--format=%s", commit)[:80]
    twins: dict[str, str] = {}
    built: set[str] = set()
    for name, python in rows.items():
        if python not in built:
            print(f"benchmarks: building {commit} for {python}", flush=True)
            build(tree, python, install)
            built.add(python)
        twins[add_twin(name, commit, tree)] = f"qactuar at {commit} ({subject})"
    return commit, twins


def qactuar_rows(names: list[str]) -> dict[str, str]:
    """The qactuar rows among `names` (qactuar and its --pythons rows) -> interpreter."""
    rows = {}
    for name in names:
        spec = SERVERS[name]
        if spec.base == "qactuar" and spec.only is None:
            rows[name] = spec.command("benchmarks.apps:hello", 0, Variant())[0]
    return rows


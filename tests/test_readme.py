"""The README is what a newcomer needs first, and it is true: its set-up commands are the
ones CI runs, its example serves, its chart exists and it links every docs page."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import httpx

from conftest import TESTS_DIR, ServerProcess, assert_hello_example_serves

ROOT = TESTS_DIR.parent
README = (ROOT / "README.md").read_text()
SETUP_COMMANDS = ["python3 -m pip install . && qactuar",
                  "python3 -m pip install -e '.[test]' && python3 -m pytest"]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def test_ci_runs_the_readme_commands_both_ways() -> None:
    # The set-up block's commands: install-and-serve, then install-and-test.
    setup_block = next(block for block in _blocks("bash") if "python3 -m pytest" in block)
    commands = [line for line in setup_block.splitlines() if line.startswith("python3 ")]
    assert commands[1:] == SETUP_COMMANDS  # after the virtual environment's line
    commands = commands[1:]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci
    # ...and the whole suite again on the pure-Python modules, the reference.
    assert "QACTUAR_PURE_PYTHON=1 python3 -m pytest" in ci


def test_the_setup_commands_start_by_making_a_virtual_environment_as_ci_does() -> None:
    setup_block = next(block for block in _blocks("bash") if "python3 -m pytest" in block)
    first = next(line for line in setup_block.splitlines() if line.startswith("python3 "))
    assert first.startswith("python3 -m venv ")
    make, activate = first.split(" && ")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert make in ci
    assert activate in ci


def test_the_example_serves(tmp_path: Path) -> None:
    (example,) = _blocks("python")
    assert_hello_example_serves(example, tmp_path)


def test_the_example_serves_as_module_attr_too(tmp_path: Path) -> None:
    """`qactuar hello:app`, as the README says, with the file unchanged."""
    (example,) = _blocks("python")
    (tmp_path / "hello.py").write_text(example)
    script = shutil.which("qactuar", path=str(Path(sys.executable).parent))
    assert script is not None
    server = ServerProcess([], cwd=tmp_path, command=[script, "hello:app"],
                           env={"QACTUAR_HOST": "127.0.0.1", "QACTUAR_PORT": "0"})
    try:
        assert httpx.get(f"{server.url}/", timeout=5).text == "Hello, world!"
    finally:
        assert server.stop() == 0


def test_the_headline_chart_is_the_latest_benchmark_chart() -> None:
    (chart,) = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert chart == "benchmarks/results/latest.svg"
    assert (ROOT / chart).is_file()


def test_the_readme_links_every_docs_page_and_stays_short() -> None:
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", README))
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert linked == pages
    assert len(README.splitlines()) <= 250


def test_the_headline_figures_are_the_latest_runs() -> None:
    latest = (ROOT / "benchmarks" / "results" / "latest.md").read_text()
    header = next(line for line in latest.splitlines() if line.startswith("| scenario |"))
    hello = next(line for line in latest.splitlines() if line.startswith("| hello world ("))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    row = dict(zip(columns, (cell.strip() for cell in hello.strip("|").split("|")),
                   strict=True))
    x_granian = float(row["qactuar"].replace(",", "")) / float(row["granian"].replace(",", ""))
    shown = re.search(r"hello world: ([\d.]+) x\s+uvicorn, ([\d.]+) x granian", README)
    assert shown is not None
    assert shown.groups() == (row["qactuar x uvicorn"], f"{x_granian:.2f}")

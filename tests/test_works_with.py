"""The "works with" table of docs/frameworks.md is exactly what the framework tests cover."""

from __future__ import annotations

import re
import tomllib

import pytest

from matrix import MODELS, covers
from works_with import (
    FRAMEWORK_NAMES,
    PAGE,
    collected_models,
    covered,
    covering_tests,
    page_block,
    table,
)

ROOT = PAGE.parent.parent


def test_the_frameworks_page_table_is_generated_from_the_tests() -> None:
    assert page_block(PAGE.read_text()) == table(), (
        "docs/frameworks.md's works-with table is out of date: "
        "run `python tests/works_with.py --write`")


def test_every_framework_of_the_matrix_has_a_row() -> None:
    cells = covered()
    assert set(cells) == {"starlette", "fastapi", "django", "quart", "tornado", "tonberry"}
    rendered = table()
    for framework in ("Starlette", "FastAPI", "Django", "Quart", "Tornado", "Tonberry"):
        assert f"| {framework}" in rendered


def test_a_feature_no_test_covers_is_not_claimed() -> None:
    cells = covered()
    assert "csrf" in cells["django"]
    assert "csrf" not in cells["starlette"]  # nothing checks it there, so no tick
    assert "CSRF | " in table().splitlines()[0] + " "


def test_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        covers("teleportation")


def test_every_covering_test_runs_in_every_process_model() -> None:
    """The table's footnote says each tick was checked under every model of MODELS."""
    tests = {f"{module}::{name}" for module, name, _, _ in covering_tests()}
    models = collected_models({test.split("::")[0] for test in tests})
    missing = {test: sorted(set(MODELS) - models.get(test, set())) for test in tests}
    assert {test: gaps for test, gaps in missing.items() if gaps} == {}
    assert f"Each checked in the process model(s): {', '.join(f'`{m}`' for m in MODELS)}." \
        in table()


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()  # type: ignore[union-attr]
            for line in requirements}


def test_the_frameworks_are_test_only_dependencies_installed_and_run_by_ci() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test_extra = _names(project["optional-dependencies"]["test"])
    runtime = _names(project["dependencies"])
    # Starlette's and FastAPI's form and upload tests need python-multipart.
    frameworks = {*FRAMEWORK_NAMES, "python-multipart"}
    assert frameworks <= test_extra, frameworks - test_extra
    assert not frameworks & runtime, frameworks & runtime
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in ci

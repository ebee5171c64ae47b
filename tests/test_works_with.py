"""The README's "works with" table is exactly what the framework tests cover."""

from __future__ import annotations

import pytest

from matrix import covers
from works_with import README, covered, readme_block, table


def test_the_readme_table_is_generated_from_the_tests() -> None:
    assert readme_block(README.read_text()) == table(), (
        "README.md's works-with table is out of date: run `python tests/works_with.py --write`")


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

"""Every ```python example of docs/client.md runs, against a real Qactuar server.

The examples address the server as http://127.0.0.1:8000; the test substitutes the
address of the server it started (tests/apps/client_app.py).
"""

from __future__ import annotations

import pytest

from client_helpers import client_app_server
from conftest import ServerProcess
from docs_examples import code_blocks

__all__ = ["client_app_server"]
EXAMPLES = code_blocks("client.md", "python")
PLACEHOLDER = "http://127.0.0.1:8000"


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(client_app_server: ServerProcess, index: int) -> None:
    source = EXAMPLES[index].replace(PLACEHOLDER, client_app_server.url)
    exec(compile(source, f"docs/client.md example {index + 1}", "exec"), {"__name__": "docs"})

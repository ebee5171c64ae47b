"""The framework matrix's shared parts: which process models every framework app runs
in, how a framework app is started, and the `covers` marker that the README's
"works with" table is built from (see `works_with.py`).

Each framework's test module marks its tests with `@covers("feature", ...)`;
the table lists a feature for a framework only when a test of that module
covers it, so the README can only claim what the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest import ServerProcess

# The process models every framework app is served in: the one parametrisation
# point of the matrix.  When prefork/postfork land (issue 4), add them here,
# e.g. ["async", "prefork", "postfork"]; their flags are in MODEL_ARGS.
MODELS = ["async"]
# Note for prefork/postfork: a test that keeps an app's in-memory state across two
# connections (test_frameworks.py's background task checked from a second
# connection) can land on different processes there; give such tests a state
# outside the process (a file, as the Tornado events) or limit them to "async".

MODEL_ARGS: dict[str, list[str]] = {
    "async": ["--model", "async"],
    "prefork": ["--model", "prefork", "--workers", "2"],
    "postfork": ["--model", "postfork"],
}

# The table's columns, in order: feature name -> what the README calls it.
FEATURES: dict[str, str] = {
    "routing": "routing",
    "json": "JSON",
    "form": "forms",
    "upload": "multipart upload",
    "streaming": "streamed response",
    "file": "file response",
    "background": "background tasks",
    "lifespan": "lifespan state",
    "root_path": "under an `APPS` prefix",
    "errors": "error pages",
    "csrf": "CSRF",
    "static": "static files",
    "websocket": "WebSocket",
}


def start_app(target: str, model: str, *args: str, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> ServerProcess:
    """Serve `target` (or APPS, when it is "") through the real `qactuar` command."""
    command = [target] if target else []
    return ServerProcess([*command, *MODEL_ARGS[model], "--host", "127.0.0.1", "--port", "0",
                          "--shutdown-timeout", "5", *args], env=env, cwd=cwd)


def covers(*features: str, frameworks: Sequence[str] | None = None) -> pytest.MarkDecorator:
    """Mark a test as checking `features` for `frameworks` (default: its module's FRAMEWORKS)."""
    unknown = [feature for feature in features if feature not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; known: {list(FEATURES)}")
    return pytest.mark.covers(features=tuple(features),
                              frameworks=tuple(frameworks) if frameworks else None)

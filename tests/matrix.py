"""The framework matrix's shared parts: which process models every framework app runs
in, how a framework app is started, and the `covers` marker that docs/frameworks.md's
"works with" table is built from (see `works_with.py`).

Each framework's test module marks its tests with `@covers("feature", ...)`;
the table lists a feature for a framework only when a test of that module
covers it, so the docs can only claim what the tests check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import MODEL_ARGS, ServerProcess

# The process models every framework app is served in: the one parametrisation
# point of the matrix.  Their flags are conftest's MODEL_ARGS (prefork with two
# workers, so requests of one test really spread over processes).
MODELS = ["async", "prefork", "postfork"]
# A test whose app keeps state across requests must keep it outside the process
# (test_frameworks.py's background tokens and WebSocket disconnects go to an
# events file, apps/background_tokens.py): under prefork/postfork two connections
# can be served by different worker processes.

# The table's columns, in order: feature name -> what the docs table calls it.
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


def app_fixtures(target: str) -> tuple[Any, Any]:
    """A test module's `server` and `client` fixtures for one framework app:

        server, client = app_fixtures("apps.quart_app:app")

    `server` serves `target` through the real command, once per model of MODELS
    (module scope, so a module's tests share one server per model); `client` is
    an httpx client for it.
    """

    @pytest.fixture(scope="module", params=MODELS, name="server")
    def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
        process = start_app(target, request.param)
        yield process
        assert process.stop() == 0, process.output

    @pytest.fixture(name="client")
    def client(server: ServerProcess) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield http

    return server, client


def covers(*features: str, frameworks: Sequence[str] | None = None) -> pytest.MarkDecorator:
    """Mark a test as checking `features` for `frameworks` (default: its module's FRAMEWORKS)."""
    unknown = [feature for feature in features if feature not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; known: {list(FEATURES)}")
    return pytest.mark.covers(features=tuple(features),
                              frameworks=tuple(frameworks) if frameworks else None)

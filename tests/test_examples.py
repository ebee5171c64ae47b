"""examples/: the apps docs/frameworks.md points to, mounted together by its
qactuar_config.json, and the Tonberry example of the original README served through
`qactuar.run(app=app)`; the page's Tornado example serves too.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from conftest import TESTS_DIR, ServerProcess
from docs_examples import code_blocks
from matrix import MODEL_ARGS, MODELS, covers

EXAMPLES = TESTS_DIR.parent / "examples"
FRAMEWORKS = ["tonberry"]


def qactuar_command(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`qactuar ARGS` in examples/: the console script the docs' commands use."""
    script = shutil.which("qactuar", path=str(Path(sys.executable).parent))
    assert script is not None, f"no qactuar console script next to {sys.executable}"
    return ServerProcess(list(args), cwd=EXAMPLES, command=[script, *args], env=env)


@pytest.fixture(scope="module", params=MODELS)
def examples_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    # The frameworks page's command, on a free port: QACTUAR_CONFIG=qactuar_config.json qactuar
    server = qactuar_command(*MODEL_ARGS[request.param], "--port", "0",
                             env={"QACTUAR_CONFIG": "qactuar_config.json"})
    yield server
    assert server.stop() == 0, server.output


def test_the_config_mounts_every_framework_example() -> None:
    mounted = json.loads((EXAMPLES / "qactuar_config.json").read_text())["APPS"]
    modules = {target.split(":")[0] for target in mounted.values()}
    examples = {path.stem for path in EXAMPLES.glob("*_app.py")}
    # Tonberry's example builds its app under __main__ (run by itself, below).
    assert modules == examples - {"tonberry_app"}


@pytest.mark.parametrize(("path", "expected"), [
    ("/starlette/", "Hello from Starlette"),
    ("/fastapi/", '{"message":"Hello from FastAPI"}'),
    ("/django/", "Hello from Django"),
    ("/quart/", "Hello from Quart"),
    ("/tornado/", "Hello from Tornado"),
    ("/quart/countdown", "3\n2\n1\nliftoff\n"),
    ("/tornado/tick", "tick 0\ntick 1\ntick 2\n"),
    ("/tornado/greet/Ann", '{"greeting": "Hello, Ann!"}'),
])
def test_each_example_answers_under_its_prefix(examples_server: ServerProcess, path: str,
                                               expected: str) -> None:
    response = httpx.get(f"{examples_server.url}{path}", timeout=10)
    assert response.status_code == 200
    assert response.text == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("starlette_app:app", "Hello from Starlette"),
    ("fastapi_app:app", '{"message":"Hello from FastAPI"}'),
    ("django_app:application", "Hello from Django"),
    ("quart_app:app", "Hello from Quart"),
    ("tornado_app:app", "Hello from Tornado"),
])
def test_each_example_runs_by_itself(target: str, expected: str) -> None:
    """docs/frameworks.md: "Each also runs by itself, for example `qactuar quart_app:app`"."""
    server = qactuar_command(target, "--host", "127.0.0.1", "--port", "0")
    try:
        response = httpx.get(f"{server.url}/", timeout=10)
        assert (response.status_code, response.text) == (200, expected)
    finally:
        assert server.stop() == 0, server.output


def test_examples_that_need_their_prefix(examples_server: ServerProcess) -> None:
    url = examples_server.url
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/starlette/about").json() == {
            "framework": "starlette", "root_path": "/starlette",
            "self": f"{url}/starlette/about"}
        assert client.post("/fastapi/items", json={"name": "lamp", "price": 10}).json() == {
            "name": "lamp", "price_with_tax": 12.0}
        page = client.get("/django/guestbook")
        token = re.search(r'value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        signed = client.post("/django/guestbook",
                             data={"csrfmiddlewaretoken": token, "name": "Ann"})
        assert signed.text == "Thanks, Ann!"
        assert client.get("/nowhere").status_code == 404


def test_the_starlette_example_websocket(examples_server: ServerProcess) -> None:
    url = f"ws://{examples_server.host}:{examples_server.port}/starlette/echo"

    async def talk() -> list[str | bytes]:
        async with websockets.connect(url) as ws:
            replies = []
            for line in ["hello", "ünïcode ✓"]:
                await ws.send(line)
                replies.append(await ws.recv())
            return replies

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == ["echo: hello", "echo: ünïcode ✓"]


# The "Programatically" example of the original Qactuar README (Ayehavgunne/Qactuar),
# character for character: the issue asks for exactly this app to be served.
ORIGINAL_TONBERRY_EXAMPLE = """\
from tonberry import create_app, expose
from tonberry.content_types import TextPlain

import qactuar

class Root:
    @expose.get
    async def index(self) -> TextPlain:
        return "Hello, world!"


if __name__ == "__main__":
    app = create_app(Root)
    qactuar.run(app=app)
    # other keyword arguments for run() are host, port and conf
"""


def _docs_tonberry_example() -> str:
    return next(block for block in code_blocks("frameworks.md", "python")
                if "from tonberry" in block)


def test_the_tonberry_example_is_the_original_readmes() -> None:
    assert _docs_tonberry_example() == ORIGINAL_TONBERRY_EXAMPLE
    assert (EXAMPLES / "tonberry_app.py").read_text() == ORIGINAL_TONBERRY_EXAMPLE


@covers("routing")
@pytest.mark.parametrize("model", MODELS)
def test_the_docs_tonberry_example_serves(model: str) -> None:
    """examples/tonberry_app.py run as it is (`python tonberry_app.py`): its
    `qactuar.run(app=app)` takes host, port and model from QACTUAR_* variables,
    so the file needs no change to listen on a free port."""
    server = ServerProcess([], cwd=EXAMPLES, command=[sys.executable, "tonberry_app.py"],
                           env={"QACTUAR_HOST": "127.0.0.1", "QACTUAR_PORT": "0",
                                "QACTUAR_ASYNCRONOUS_MODEL": model})
    try:
        server.wait_for_log(rf"Listening on .* \({model} model")
        response = httpx.get(f"{server.url}/", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain"
        assert response.text == "Hello, world!"
        assert httpx.get(f"{server.url}/nothing-here", timeout=10).status_code == 404
    finally:
        assert server.stop() == 0, server.output


def test_the_docs_tornado_example_serves(tmp_path: Path) -> None:
    example = next(block for block in code_blocks("frameworks.md", "python")
                   if "TornadoApp(" in block)
    (tmp_path / "docs_tornado.py").write_text(example)
    server = ServerProcess(["docs_tornado:app", "--host", "127.0.0.1", "--port", "0"],
                           cwd=tmp_path)
    try:
        assert httpx.get(f"{server.url}/?name=Ann", timeout=10).json() == {"hello": "Ann"}
    finally:
        assert server.stop() == 0, server.output
    server = ServerProcess(["docs_tornado:lone", "--host", "127.0.0.1", "--port", "0"],
                           cwd=tmp_path)
    try:
        assert httpx.get(f"{server.url}/any/where", timeout=10).json() == {"hello": "world"}
    finally:
        assert server.stop() == 0, server.output

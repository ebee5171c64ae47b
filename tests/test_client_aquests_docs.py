"""docs/client-aquests.md: its Python examples run (against tests/apps/aquests_app.py in
place of 127.0.0.1:5000) and print what the page says; its 7xx table is the engine's."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

import qactuar.client.aquests as aquests_module
from conftest import ServerProcess
from docs_examples import DOCS_DIR, code_blocks
from qactuar.client import CODES

PAGE = "client-aquests.md"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(["apps.aquests_app:app", "--host", "127.0.0.1", "--port", "0"])
    yield process
    process.stop()


def run_block(block: str, server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aquests_module, "_session", aquests_module._Session())
    code = block.replace("127.0.0.1:5000", f"127.0.0.1:{server.port}")
    exec(compile(code, f"<docs/{PAGE}>", "exec"), {"__name__": "__docs__"})


def test_every_python_example_runs(server: ServerProcess, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    blocks = code_blocks(PAGE, "python")
    assert len(blocks) == 10
    outputs = []
    for block in blocks:
        run_block(block, server, monkeypatch)
        outputs.append(capsys.readouterr().out.splitlines())
    (quickstart, many, families, rpc, response, failures, validators, ws_calls, ws_client,
     ws_h2) = outputs

    # The quickstart prints the line the page shows right after it.
    assert quickstart == code_blocks(PAGE, "text")[0].splitlines()
    assert many[0] == "50 {200}" and "summary" in many
    assert sorted(families) == [
        '0 a 200 POST {"author": "James Milton"}',
        "1 b 200 POST author=James%20Milton",
        "basic: 200",
    ]
    assert sorted(rpc) == ["10007", "5"]
    assert response == ["200 1.1 application/json", "('application/json', {})",
                        "{'hello': 'world'} application/json"]
    assert sorted(failures) == ["702 Socket Timeout None", "704 DNS Not Found None"]
    assert sorted(validators) == ["200 OK", "718 Unacceptable Content Type",
                                  "719 Too Large Content"]
    assert sorted(ws_calls) == ["200 1 Hello World", "200 10 b'are you there'",
                                "200 2 b'Hello World'"]
    assert ws_client == ["['permessage-deflate']", "hello", "b'\\x00\\x01'", "fragmented",
                         "True", "1000", "4000 go away 710"]
    assert ws_h2 == ["HTTP/2 hello over one stream"]


def test_the_7xx_table_is_the_engines_page() -> None:
    text = (DOCS_DIR / PAGE).read_text()
    assert "(client.md#errors)" in text
    engine_page = (DOCS_DIR / "client.md").read_text()
    assert "## Errors" in engine_page
    for code in CODES:
        assert re.search(rf"^\| {code} \|", engine_page, flags=re.M), code

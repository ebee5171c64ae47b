"""docs/architecture.md stays true: its Python example runs, and the code it names exists.

The page is a map of the code; a renamed module, class or function would leave
it pointing at nothing, so every `qactuar` name it gives in backquotes is
checked here, and its one Python example is run.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from conftest import TESTS_DIR, child_env

PAGE = TESTS_DIR.parent / "docs" / "architecture.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), flags=re.M | re.S)


def test_the_python_example_runs() -> None:
    (example,) = blocks("python")
    result = subprocess.run([sys.executable, "-c", example], env=child_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_modules_the_page_names_exist() -> None:
    text = PAGE.read_text()
    paths = set(re.findall(r"`((?:asgi|protocols|models)/[a-z0-9_]+\.py)`", text))
    paths |= set(re.findall(r"`([a-z_]+\.py)`", text)) - {"setup.py"}
    assert len(paths) > 10
    for path in sorted(paths):
        found = list((TESTS_DIR.parent / "qactuar").rglob(path.rpartition("/")[2]))
        assert found, f"docs/architecture.md names {path}, which does not exist"


def test_the_interfaces_the_page_describes_exist() -> None:
    names = {
        "qactuar.asgi.request_head": ["request_scope", "RefusedRequest"],
        "qactuar.asgi.http_stream": ["HTTPStream", "RESPONSE_PHASES", "ResponseSink"],
        "qactuar.protocols.http1": ["HTTP1Protocol", "PARSE_PHASES", "StopParsing"],
        "qactuar.protocols.handover": ["ProtocolFactory", "DEFAULT_PROTOCOLS", "to_http2",
                                       "to_websocket", "alpn_chose_h2", "may_be_preface",
                                       "opens_with_preface", "h2c_upgrade"],
        "qactuar.protocols.h2_connection": ["H2Connection", "H2ConnectionError",
                                            "H2DenialOfService"],
        "qactuar.server_state": ["ServerState", "ServerObserver"],
        "qactuar.limits": ["Limits"],
        "qactuar._build": ["COMPILED_MODULES"],
    }
    text = PAGE.read_text()
    for module_name, attributes in names.items():
        module = importlib.import_module(module_name)
        for attribute in attributes:
            assert hasattr(module, attribute), f"{module_name}.{attribute}"
            assert attribute in text, f"the page no longer mentions {attribute}"
    observer = importlib.import_module("qactuar.server_state").ServerObserver
    for method in ("request_started", "response_started", "request_finished",
                   "connection_closed"):
        assert callable(getattr(observer, method)) and f"`{method}" in text
    from qactuar._build import COMPILED_MODULES
    for name in COMPILED_MODULES:
        source = name.removeprefix("qactuar.").replace(".", "/") + ".py"
        assert f"`{source}`" in text, f"the page does not list the compiled {source}"

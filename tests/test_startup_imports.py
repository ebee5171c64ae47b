"""What starting a server imports: the serving path leaves optional parts alone.

Start-up time is measured in benchmarks/ (the `startup` scenario); this checks
the cause that held it back, in a fresh interpreter: HTTP/2, the WebSocket
protocol (and the `websockets` library), the pod, the load tool and the client
are imported when configured or first used, not by every start.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from qactuar.protocols import h2_connection, handover

NOT_AT_START = ("qactuar.protocols.http2", "qactuar.protocols.websocket", "websockets",
                "qactuar.pod", "qactuar.load", "qactuar.client", "qactuar.admin.app", "tomllib",
                "importlib.abc")


def test_the_serving_path_imports_no_optional_part() -> None:
    code = ("import sys, qactuar.cli, qactuar.models.aio, qactuar.protocols.http1\n"
            "from qactuar.config import load_config\n"
            "load_config({}, {})\n"
            f"print(','.join(m for m in {NOT_AT_START!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "", done.stdout


def test_the_preface_handover_looks_for_is_http2s() -> None:
    assert handover.PREFACE == h2_connection.PREFACE


def test_benchmarks_refuse_an_interpreter_without_qactuars_server(tmp_path: Path) -> None:
    """`python -m benchmarks --qactuar-python PATH`: one clear line when PATH cannot serve."""
    from benchmarks.__main__ import parse_args

    with pytest.raises(SystemExit) as refused:
        parse_args(["--qactuar-python", str(tmp_path / "no-python")])
    assert "--qactuar-python" in str(refused.value) and "cannot run it" in str(refused.value)
    args = parse_args(["--qactuar-python", sys.executable])
    assert args.qactuar_python_version == platform.python_version()

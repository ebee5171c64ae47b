"""docs/admin.md's examples, run against a real server configured by the page's own TOML.

The page's app (its ```python block) is written to a file and served in prefork
with the page's config file; ports are the page's with the free ones the server
took substituted (1986 for the admin plane, 8000 for the main port).  Every
```bash block must exit 0; the ```json blocks must parse, and the readiness one
must be what the server answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
from test_admin import AdminServer

from conftest import ServerProcess, wait_until
from docs_examples import code_blocks

PAGE = "admin.md"


def test_every_admin_example_runs(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(code_blocks(PAGE, "python")[0])
    config_text = code_blocks(PAGE, "toml")[0]
    settings = tomllib.loads(config_text)
    assert settings["ADMIN"] is True and settings["ASYNCRONOUS_MODEL"] == "prefork"
    (tmp_path / "qactuar.toml").write_text(config_text)
    process = ServerProcess(["hello:app", "--app-dir", str(tmp_path)], cwd=tmp_path, env={
        "QACTUAR_CONFIG": str(tmp_path / "qactuar.toml"), "QACTUAR_HOST": "127.0.0.1",
        "QACTUAR_PORT": "0", "QACTUAR_ADMIN_PORT": "0",
        "QACTUAR_ADMIN_SOCKET": str(tmp_path / "admin.sock")})
    server = AdminServer(process)
    admin_port = server.admin_url.rsplit(":", 1)[1]
    try:
        assert (tmp_path / "admin.sock").exists()
        assert httpx.get(server.url + "/healthz").json() == {"status": "alive"}
        blocks = code_blocks(PAGE, "json")
        # The page shows every worker ready; the second may still be starting (a loaded
        # machine): wait for it (the deadline fails the test if it never comes).
        wait_until(lambda: server.admin("GET", "/readyz").json() == json.loads(blocks[0]),
                   what="/readyz as the page shows it")
        for block in blocks:
            json.loads(block)
        env = {**os.environ, "QACTUAR_ADMIN_PORT": admin_port,
               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
        env = {k: v for k, v in env.items()
               if not k.startswith("QACTUAR_") or k in ("QACTUAR_ADMIN_PORT",
                                                        "QACTUAR_PURE_PYTHON")}
        outputs = []
        for block in code_blocks(PAGE, "bash"):
            script = block.replace("localhost:1986", f"localhost:{admin_port}").replace(
                "localhost:8000", f"localhost:{server.url.rsplit(':', 1)[1]}")
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                                    cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
            outputs.append(result.stdout)
        joined = "\n".join(outputs)
        assert "Hello from the admin docs" in joined  # the app mounted at /api answered
        assert "prefork model" in joined  # qactuar ctl status
        process.wait_for_log(r"admin: apps unmount /api")
        process.wait_for_log(r"admin: pod cancel label 'fast' in pid \d+, \d+ \(by ")
        process.wait_for_log(r"admin: pod restart label 'slow' in pid \d+, \d+ \(by ")
    finally:
        assert process.stop() == 0

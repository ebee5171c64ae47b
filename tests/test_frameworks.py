"""Starlette and FastAPI end to end through the real server, with httpx and curl.

Both apps (apps/starlette_app.py, apps/fastapi_app.py) have the same routes,
so every test runs against both.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess

FRAMEWORKS = ["starlette", "fastapi"]


@pytest.fixture(scope="module", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerProcess]]:
    name = request.param
    server = ServerProcess([f"apps.{name}_app:app", "--host", "127.0.0.1", "--port", "0",
                            "--shutdown-timeout", "5"])
    yield name, server
    assert server.stop() == 0, server.output


@pytest.fixture
def client(framework: tuple[str, ServerProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=framework[1].url, timeout=10) as http:
        yield http


def test_json_endpoint_sees_the_lifespan_state(framework: tuple[str, ServerProcess],
                                               client: httpx.Client) -> None:
    name, _ = framework
    response = client.get("/json", params={"x": "1", "y": "two words"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"framework": name, "greeting": f"hello from {name} lifespan",
                               "root_path": "", "query": {"x": "1", "y": "two words"}}


def test_json_request_body(client: httpx.Client) -> None:
    payload = {"text": "naïve café ✓", "numbers": list(range(2000)), "nested": {"a": [None]}}
    response = client.post("/echo-json", json=payload)
    assert response.status_code == 200
    assert response.json() == {"received": payload}


@pytest.mark.parametrize("size", [0, 11, 300 * 1024])
def test_multipart_upload(client: httpx.Client, size: int) -> None:
    content = os.urandom(size)
    response = client.post("/upload", data={"note": "a note ✓"},
                           files={"file": ("report.bin", content, "application/octet-stream")})
    assert response.status_code == 200, response.text
    assert response.json() == {"filename": "report.bin",
                               "content_type": "application/octet-stream",
                               "size": size, "sha256": hashlib.sha256(content).hexdigest(),
                               "note": "a note ✓"}


def test_streaming_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": "200"}) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(200))


def test_background_task_runs_after_the_response(client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    # The task waits for /release, so the answer can only come before it runs.
    response = client.post(f"/background/{token}")
    assert response.status_code == 200
    assert response.json() == {"scheduled": token}
    assert client.get(f"/background/{token}").json() == {"token": token, "done": False}
    assert client.post(f"/release/{token}").status_code == 200
    deadline = time.monotonic() + 10
    while not client.get(f"/background/{token}").json()["done"]:
        assert time.monotonic() < deadline, "the background task never finished"
        time.sleep(0.01)


def test_background_task_on_a_separate_connection(framework: tuple[str, ServerProcess]) -> None:
    """The scheduling connection stays open and idle while its task runs."""
    url = framework[1].url
    token = uuid.uuid4().hex
    with httpx.Client(base_url=url, timeout=10) as first, \
            httpx.Client(base_url=url, timeout=10) as second:
        assert first.post(f"/background/{token}").status_code == 200
        assert second.post(f"/release/{token}").status_code == 200
        deadline = time.monotonic() + 10
        while not second.get(f"/background/{token}").json()["done"]:
            assert time.monotonic() < deadline, "the background task never finished"
            time.sleep(0.01)
        # The first connection is still usable for another request.
        assert first.get("/json").status_code == 200


@pytest.mark.parametrize("framework", ["fastapi"], indirect=True)
def test_fastapi_validation(client: httpx.Client) -> None:
    ok = client.post("/items", json={"name": "lamp", "price": 10, "tags": ["home"]})
    assert ok.status_code == 200
    assert ok.json() == {"name": "lamp", "price": 10.0, "tags": ["home"], "with_tax": 12.0}
    bad = client.post("/items", json={"name": "lamp", "price": "free"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "price"]


def test_curl_as_a_client(framework: tuple[str, ServerProcess], tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is not installed"
    name, server = framework
    upload = tmp_path / "hello.txt"
    upload.write_bytes(b"hello from curl\n" * 1000)
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--fail", "--max-time", "20",
         "-F", f"file=@{upload};type=text/plain", "-F", "note=sent by curl",
         f"{server.url}/upload",
         "--next", "--silent", "--show-error", "--fail", "--max-time", "20",
         f"{server.url}/json"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    uploaded, end = decoder.raw_decode(result.stdout)
    info = json.loads(result.stdout[end:])
    assert uploaded == {"filename": "hello.txt", "content_type": "text/plain",
                        "size": upload.stat().st_size,
                        "sha256": hashlib.sha256(upload.read_bytes()).hexdigest(),
                        "note": "sent by curl"}
    assert info["greeting"] == f"hello from {name} lifespan"

"""Django through its own ASGI handler (apps/django_app.py, a one-module project).

Served by the real `qactuar` command in every process model of the matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from conftest import TESTS_DIR, ServerProcess
from matrix import MODELS, app_fixtures, covers, start_app

FRAMEWORKS = ["django"]
APP = "apps.django_app:application"

server, client = app_fixtures(APP)


@covers("routing")
def test_a_view(client: httpx.Client) -> None:
    response = client.get("/hello", params={"name": "Qactuar ✓"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "Hello, Qactuar ✓!"


@covers("json")
def test_json_response(client: httpx.Client) -> None:
    response = client.get("/json", params={"a": "1", "b": "x y"})
    assert response.json() == {"framework": "django", "query": {"a": "1", "b": "x y"},
                               "script_name": "", "reverse": "/json"}


@covers("form", "csrf")
def test_a_form_post_with_csrf(client: httpx.Client) -> None:
    page = client.get("/form")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None, page.text
    assert "csrftoken" in client.cookies
    posted = client.post("/form", data={"csrfmiddlewaretoken": token.group(1),
                                        "title": "a title ✓"})
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"fields": {"title": ["a title ✓"]}}


@covers("csrf")
def test_a_form_post_without_a_valid_token_is_403(client: httpx.Client) -> None:
    assert client.post("/form", data={"title": "x"}).status_code == 403  # no cookie
    client.get("/form")
    forged = client.post("/form", data={"csrfmiddlewaretoken": "x" * 64, "title": "x"})
    assert forged.status_code == 403
    assert "CSRF" in forged.text


@covers("upload")
@pytest.mark.parametrize("size", [1, 300 * 1024])
def test_multipart_upload(client: httpx.Client, size: int) -> None:
    # A multipart POST is CSRF-checked too: fetch a token first.
    page = client.get("/form")
    token = re.search(r'value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    content = os.urandom(size)
    response = client.post("/upload", data={"note": "a note", "csrfmiddlewaretoken": token},
                           files={"file": ("data.bin", content, "application/x-test")})
    assert response.status_code == 200, response.text
    assert response.json() == {"filename": "data.bin", "content_type": "application/x-test",
                               "size": size, "sha256": hashlib.sha256(content).hexdigest(),
                               "note": "a note"}


@covers("static")
def test_static_files_served_by_the_app(client: httpx.Client) -> None:
    response = client.get("/static/site.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css"
    assert response.content == (TESTS_DIR / "apps" / "django_static" / "site.css").read_bytes()
    assert client.get("/static/missing.css").status_code == 404


@covers("streaming")
def test_streaming_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": "100"}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(100))


@covers("file")
def test_file_response(client: httpx.Client) -> None:
    response = client.get("/file")
    assert response.status_code == 200
    assert response.content == (TESTS_DIR / "apps" / "django_app.py").read_bytes()


@covers("errors")
def test_djangos_error_pages(server: ServerProcess, client: httpx.Client) -> None:
    start = len(server.lines)
    crash = client.get("/crash")
    assert crash.status_code == 500
    assert "Server Error (500)" in crash.text
    server.wait_for_log("the Django view crashed on purpose", start=start)
    missing = client.get("/missing")
    assert missing.status_code == 404
    assert "Not Found" in missing.text


@covers("root_path")
@pytest.mark.parametrize("model", MODELS)
def test_mounted_under_an_apps_prefix(tmp_path: Path, model: str) -> None:
    config = tmp_path / "apps.json"
    config.write_text(json.dumps({"APPS": {"/dj": APP}}))
    server = start_app("", model, env={"QACTUAR_CONFIG": str(config)})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/dj/json").json() == {"framework": "django", "query": {},
                                                   "script_name": "/dj",
                                                   "reverse": "/dj/json"}
            assert http.get("/dj/hello").text == "Hello, world!"
    finally:
        assert server.stop() == 0, server.output

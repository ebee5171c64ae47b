"""The client's features against a real Qactuar server running tests/apps/client_app.py:
redirects, cookies, auth (basic, digest, bearer), retries, decoding, multipart, timeouts."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from pathlib import Path

import pytest

from client_helpers import client_app_server, run
from conftest import ServerProcess
from qactuar.client import (
    AuthError,
    BasicAuth,
    BearerAuth,
    Client,
    DecodingError,
    DigestAuth,
    HTTPStatusError,
    RedirectError,
    Response,
)
from qactuar.client.auth import parse_challenges

__all__ = ["client_app_server"]


def fetch(server: ServerProcess, *calls, **client_options):
    """Run `calls` (coroutine functions of a Client) in order on one Client; their results."""

    async def main():
        async with Client(**client_options) as client:
            return [await call(client, server.url) for call in calls]

    return run(main())


# -- redirects ---------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "method", "expected_method", "body_kept"), [
    (301, "POST", "GET", False), (302, "POST", "GET", False), (303, "POST", "GET", False),
    (303, "PUT", "GET", False), (307, "POST", "POST", True), (308, "PUT", "PUT", True),
    (301, "PUT", "PUT", True), (302, "GET", "GET", True),
])
def test_redirect_method_rules(client_app_server, code, method, expected_method,
                               body_kept) -> None:
    async def call(client, url):
        return await client.request(method, f"{url}/redirect/{code}?to=/method",
                                    content=b"payload")

    (response,) = fetch(client_app_server, call)
    data = response.json()
    assert data["method"] == expected_method
    assert data["body"] == ("payload" if body_kept else "")
    assert [r.status_code for r in response.history] == [code]
    assert response.url.endswith("/method")


def test_redirect_chain_history_and_limit(client_app_server) -> None:
    async def chain(client, url):
        return await client.get(f"{url}/chain/4")

    async def loop(client, url):
        try:
            await client.get(f"{url}/loop")
        except RedirectError as error:
            return error
        return None

    async def not_followed(client, url):
        return await client.get(f"{url}/chain/2", follow_redirects=False)

    response, error, first = fetch(client_app_server, chain, loop, not_followed,
                                   max_redirects=5)
    assert response.text == "done"
    assert [r.status_code for r in response.history] == [302] * 4
    assert response.history[0].url.endswith("/chain/4")
    assert error is not None and error.code == 711 and "more than 5 redirects" in str(error)
    assert first.status_code == 302 and first.is_redirect and first.history == []


# -- cookies -----------------------------------------------------------------------------
def test_cookies_across_routes_paths_and_expiry(client_app_server) -> None:
    async def scenario(client, url):
        set_response = await client.get(f"{url}/set-cookie?name=session&value=abc")
        await client.get(f"{url}/set-cookie?name=scoped&value=1&path=/elsewhere")
        await client.get(f"{url}/set-cookie?name=short&value=x&max_age=1")
        first = (await client.get(f"{url}/cookies")).json()
        await client.get(f"{url}/set-cookie?name=short&value=gone&max_age=0")
        second = (await client.get(f"{url}/cookies")).json()
        redirected = await client.get(f"{url}/set-cookie?name=via&value=redirect&then=/cookies")
        return set_response, first, second, redirected.json()

    (result,) = fetch(client_app_server, scenario)
    set_response, first, second, redirected = result
    assert set_response.cookies == {"session": "abc"}
    assert first == {"session": "abc", "short": "x"}  # /elsewhere's cookie stays there
    assert second == {"session": "abc"}  # Max-Age=0 deleted it
    assert redirected == {"session": "abc", "via": "redirect"}  # set on a redirect, sent on


def test_cookie_expiry_in_time(client_app_server) -> None:
    async def scenario(client, url):
        await client.get(f"{url}/set-cookie?name=brief&value=1&max_age=1")
        before = (await client.get(f"{url}/cookies")).json()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = (await client.get(f"{url}/cookies")).json()
            if not after:
                return before, after
            await asyncio.sleep(0.1)
        return before, after

    ((before, after),) = fetch(client_app_server, scenario)
    assert before == {"brief": "1"} and after == {}


def test_cookies_off(client_app_server) -> None:
    async def scenario(client, url):
        await client.get(f"{url}/set-cookie?name=session&value=abc")
        return (await client.get(f"{url}/cookies")).json()

    assert fetch(client_app_server, scenario, cookies=False) == [{}]


# -- auth --------------------------------------------------------------------------------
def test_basic_and_bearer(client_app_server) -> None:
    async def calls(client, url):
        return [
            (await client.get(f"{url}/basic", auth=BasicAuth("user", "secret"))).text,
            (await client.get(f"{url}/basic", auth=("user", "secret"))).text,
            (await client.get(f"{url}/basic", auth=("user", "wrong"))).status_code,
            (await client.get(f"{url}/bearer", auth=BearerAuth("token-1"))).text,
            (await client.get(f"{url}/bearer", auth=("token-1",))).text,
            (await client.get(f"{url}/basic")).status_code,
        ]

    (results,) = fetch(client_app_server, calls)
    assert results == ["basic ok", "basic ok", 401, "bearer ok", "bearer ok", 401]


@pytest.mark.parametrize(("algorithm", "qop"), [
    ("MD5", "auth"), ("SHA-256", "auth"), ("SHA-512-256", "auth"), ("SHA-256-sess", "auth"),
    ("MD5", None), ("SHA-256", None),  # RFC 2069's form (-sess needs qop's cnonce)
])
def test_digest_against_the_server(client_app_server, algorithm, qop) -> None:
    query = f"algorithm={algorithm}" + (f"&qop={qop}" if qop else "")

    async def calls(client, url):
        digest = DigestAuth("user", "secret")
        first = await client.get(f"{url}/digest?{query}", auth=digest)
        again = await client.get(f"{url}/digest?{query}", auth=digest)  # no 401 round trip
        by_tuple = await client.post(f"{url}/digest?{query}", auth=("user", "secret"))
        wrong = await client.get(f"{url}/digest?{query}", auth=DigestAuth("user", "nope"))
        return first, again, by_tuple, wrong

    ((first, again, by_tuple, wrong),) = fetch(client_app_server, calls)
    assert first.status_code == 200 and first.text.startswith("digest ok")
    if qop:
        assert first.text == "digest ok 00000001" and again.text == "digest ok 00000002"
    assert again.status_code == 200 and again.history == []
    assert by_tuple.status_code == 200
    assert wrong.status_code == 401


def test_digest_rfc_7616_example() -> None:
    """RFC 7616 3.9.1: the SHA-256 and MD5 answers for Mufasa at /dir/index.html."""
    from qactuar.client.urls import parse_url

    challenge = ('Digest realm="http-auth@example.org", qop="auth, auth-int", '
                 'algorithm={}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    expected = {"SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
                "MD5": "8ca523f5e9506fed4657c9700eebdbec"}

    class Request:
        method = "GET"
        parsed = parse_url("http://www.example.org/dir/index.html")

        def with_field(self, name, value):
            self.sent = value.decode()
            return self

    for algorithm, answer in expected.items():
        auth = DigestAuth("Mufasa", "Circle of Life")
        auth.make_cnonce = lambda: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        response = Response()
        response.raw_headers = [(b"WWW-Authenticate", challenge.format(algorithm).encode())]
        request = auth.answer(Request(), response)
        assert f'response="{answer}"' in request.sent
        assert "qop=auth," in request.sent and "nc=00000001" in request.sent


def test_digest_challenge_we_cannot_answer_is_706() -> None:
    response = Response()
    response.raw_headers = [(b"WWW-Authenticate",
                             b'Digest realm="r", nonce="n", qop="auth-int", algorithm=MD5')]
    with pytest.raises(AuthError) as caught:
        DigestAuth("u", "p").answer(object(), response)
    assert caught.value.code == 706
    assert parse_challenges(['Basic realm="a b", Digest realm="x", nonce="y"']) == [
        ("basic", {"realm": "a b"}), ("digest", {"realm": "x", "nonce": "y"})]


# -- retries -----------------------------------------------------------------------------
def test_retries_honour_retry_after_for_idempotent_methods(client_app_server) -> None:
    async def calls(client, url):
        started = time.monotonic()
        retried = await client.get(f"{url}/retry?key=g1&fail=2&after=1")
        waited = time.monotonic() - started
        backoff = await client.put(f"{url}/retry?key=p1&fail=1&status=502")
        not_idempotent = await client.post(f"{url}/retry?key=post1&fail=1")
        too_long = await client.get(f"{url}/retry?key=g2&fail=1&after=3600")
        exhausted = await client.get(f"{url}/retry?key=g3&fail=9")
        return retried, waited, backoff, not_idempotent, too_long, exhausted

    ((retried, waited, backoff, not_idempotent, too_long, exhausted),) = fetch(
        client_app_server, calls, retries=2)
    assert retried.text == "attempt-3" and waited >= 2  # Retry-After: 1, twice
    assert backoff.text == "attempt-2"
    assert not_idempotent.status_code == 503  # POST is never retried
    assert too_long.status_code == 503  # an hour's Retry-After is returned, not slept
    assert exhausted.status_code == 503


def test_no_retries_by_default(client_app_server) -> None:
    async def call(client, url):
        return await client.get(f"{url}/retry?key=none&fail=1&after=0")

    assert fetch(client_app_server, call)[0].status_code == 503


# -- bodies ------------------------------------------------------------------------------
def test_gzip_and_deflate_are_decoded(client_app_server) -> None:
    async def calls(client, url):
        plain = await client.get(f"{url}/gzip")
        deflated = await client.get(f"{url}/deflate")
        chunks = []
        async with client.stream("GET", f"{url}/gzip") as response:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
        try:
            (await client.get(f"{url}/bad-gzip")).content  # noqa: B018
        except DecodingError as error:
            bad = error
        return plain, deflated, b"".join(chunks), bad

    ((plain, deflated, streamed, bad),) = fetch(client_app_server, calls)
    text = b"compressed text " * 200
    assert plain.content == text and plain.headers["content-encoding"] == "gzip"
    assert deflated.content == text and streamed == text
    assert bad.code == 709
    assert gzip.decompress(gzip.compress(text)) == text


def test_stream_takes_request_arguments_and_refuses_unknown_ones(client_app_server) -> None:
    async def calls(client, url):
        try:
            client.stream("GET", f"{url}/method", param={"a": "1"})  # (params, misspelt)
        except TypeError as error:
            refused = error
        async with client.stream("POST", f"{url}/method", params={"a": "1"},
                                 headers={"X-Test": "yes"}, content=b"body") as response:
            data = json.loads(await response.aread())
        return refused, data

    ((refused, data),) = fetch(client_app_server, calls)
    assert "param" in str(refused)
    assert data["method"] == "POST" and data["query"] == "a=1" and data["body"] == "body"
    assert ["x-test", "yes"] in data["headers"]


def test_multipart_upload_of_fields_bytes_and_files(client_app_server, tmp_path: Path) -> None:
    big = tmp_path / "photo.jpg"
    big.write_bytes(bytes(range(256)) * 8192)  # 2 MiB, streamed from disk

    async def call(client, url):
        with big.open("rb") as handle:
            return await client.post(f"{url}/upload", data={"author": "James Milton"},
                                     files={"small": ("notes.txt", b"hello", "text/plain"),
                                            "photo": handle})

    (response,) = fetch(client_app_server, call)
    data = response.json()
    assert data["fields"] == {"author": "James Milton"}
    assert data["files"]["small"] == {"filename": "notes.txt", "size": 5, "type": "text/plain",
                                      "sha256": hashlib.sha256(b"hello").hexdigest()}
    photo = data["files"]["photo"]
    assert photo["filename"] == "photo.jpg" and photo["type"] == "image/jpeg"
    assert photo["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert dict(response.request.headers.items())["content-length"] == str(
        response.request.headers.get("content-length"))


def test_raise_for_status(client_app_server) -> None:
    async def call(client, url):
        return await client.get(f"{url}/basic")

    (response,) = fetch(client_app_server, call)
    with pytest.raises(HTTPStatusError) as caught:
        response.raise_for_status()
    assert caught.value.code == 401


def test_cookie_jar_domain_and_host_only_rules() -> None:
    from qactuar.client.api import OutgoingRequest
    from qactuar.client.cookies import CookieJar
    from qactuar.client.urls import parse_url

    def response_setting(url: str, *lines: str) -> Response:
        response = Response()
        response.raw_headers = [(b"Set-Cookie", line.encode()) for line in lines]
        response.request = OutgoingRequest("GET", parse_url(url), [], None, None)
        return response

    jar = CookieJar()
    jar.extract(response_setting("http://a.example.test/app/login",
                                 "shared=1; Domain=example.test; Path=/",
                                 "hostonly=2",
                                 "elsewhere=3; Domain=other.test",
                                 "secure=4; Secure; Path=/"))

    def sent(url: str) -> bytes | None:
        return jar.header_for(parse_url(url))

    assert sent("http://a.example.test/app/x") == b"hostonly=2; shared=1"
    assert sent("http://b.example.test/app/x") == b"shared=1"  # not the host-only one
    assert sent("http://a.example.test/") == b"shared=1"  # hostonly's default path is /app
    assert sent("http://other.test/") is None  # a site may not set another's cookies
    assert sent("https://a.example.test/app") == b"hostonly=2; shared=1; secure=4"
    assert sent("http://example.test.evil/") is None


def test_unanswerable_digest_challenge_through_the_client_is_706(client_app_server) -> None:
    async def call(client, url):
        try:
            await client.get(f"{url}/digest?algorithm=MD5&qop=auth-int", auth=("user", "x"))
        except AuthError as error:
            return error
        return None

    (error,) = fetch(client_app_server, call)
    assert error is not None and error.code == 706 and "auth-int" in str(error)

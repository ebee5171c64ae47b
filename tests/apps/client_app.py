"""A Starlette app the client's tests talk to: redirects, cookies, auth, retries, encodings.

Routes:
  /method                     JSON: method, body (latin-1), query, header fields
  /redirect/{code}?to=PATH    that status with Location PATH
  /chain/{n}                  redirects n times, then "done"
  /loop                       redirects to itself, for ever
  /set-cookie?name&value[&path][&max_age][&domain]   sets one cookie
  /cookies                    JSON of the cookies the request carried
  /basic                      200 only with Basic user:secret
  /bearer                     200 only with Bearer token-1
  /digest?algorithm=A[&qop=auth]  200 only with a valid Digest answer (RFC 7616)
  /retry?key=K&fail=N[&after=S][&status=503]  fails N times per key, then 200 "attempt-<n>"
  /gzip, /deflate, /bad-gzip  encoded bodies
  /upload                     JSON of a multipart form: fields and files (name, size, type)
  /count                      the number of body bytes received (streamed uploads)
  /big?mb=N                   N MiB streamed in 64 KiB chunks
  /sleep?s=X                  "slept" after X seconds
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import zlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

_attempts: dict[str, int] = {}
_NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
_REALM = "tests@qactuar"
USER, PASSWORD, TOKEN = "user", "secret", "token-1"


async def method(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"method": request.method, "body": body.decode("latin-1"),
                         "query": str(request.url.query),
                         "headers": [[k, v] for k, v in request.headers.items()]})


async def redirect(request: Request) -> Response:
    code = int(request.path_params["code"])
    return Response(status_code=code, headers={"location": request.query_params["to"]})


async def chain(request: Request) -> Response:
    n = int(request.path_params["n"])
    if n == 0:
        return PlainTextResponse("done")
    return Response(status_code=302, headers={"location": f"/chain/{n - 1}"})


async def loop(request: Request) -> Response:
    return Response(status_code=302, headers={"location": "/loop"})


async def set_cookie(request: Request) -> Response:
    q = request.query_params
    response = PlainTextResponse("set")
    response.set_cookie(q["name"], q["value"], path=q.get("path", "/"),
                        max_age=int(q["max_age"]) if "max_age" in q else None,
                        domain=q.get("domain"))
    if "then" in q:
        response.status_code = 302
        response.headers["location"] = q["then"]
    return response


async def cookies(request: Request) -> JSONResponse:
    return JSONResponse(request.cookies)


async def basic(request: Request) -> Response:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if request.headers.get("authorization") != expected:
        return Response(status_code=401, headers={"www-authenticate": 'Basic realm="t"'})
    return PlainTextResponse("basic ok")


async def bearer(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        return Response(status_code=401, headers={"www-authenticate": "Bearer"})
    return PlainTextResponse("bearer ok")


def _digest_params(header: str) -> dict[str, str]:
    params = {}
    for part in header[len("Digest "):].split(","):
        key, _, value = part.strip().partition("=")
        params[key] = value.strip('"')
    return params


async def digest(request: Request) -> Response:
    algorithm = request.query_params.get("algorithm", "MD5")
    qop = request.query_params.get("qop")
    header = request.headers.get("authorization", "")
    challenge = f'Digest realm="{_REALM}", nonce="{_NONCE}", algorithm={algorithm}, ' \
                f'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    if qop:
        challenge += f', qop="{qop}"'
    if not header.startswith("Digest "):
        return Response(status_code=401, headers={"www-authenticate": challenge})
    p = _digest_params(header)
    name = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}[
        algorithm.removesuffix("-sess")]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = h(f"{USER}:{_REALM}:{PASSWORD}")
    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{_NONCE}:{p.get('cnonce')}")
    ha2 = h(f"{request.method}:{p.get('uri')}")
    if qop:
        expected = h(f"{ha1}:{_NONCE}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
    else:
        expected = h(f"{ha1}:{_NONCE}:{ha2}")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if p.get("response") != expected or p.get("uri") != path or p.get("username") != USER:
        return Response(status_code=401, headers={"www-authenticate": challenge})
    return PlainTextResponse(f"digest ok {p.get('nc', '-')}")


async def retry(request: Request) -> Response:
    q = request.query_params
    key = q["key"]
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] <= int(q["fail"]):
        headers = {"retry-after": q["after"]} if "after" in q else {}
        return Response(status_code=int(q.get("status", 503)), headers=headers)
    return PlainTextResponse(f"attempt-{_attempts[key]}")


_TEXT = b"compressed text " * 200


async def gzipped(request: Request) -> Response:
    return Response(gzip.compress(_TEXT), headers={"content-encoding": "gzip"})


async def deflated(request: Request) -> Response:
    return Response(zlib.compress(_TEXT), headers={"content-encoding": "deflate"})


async def bad_gzip(request: Request) -> Response:
    return Response(b"this is not gzip at all", headers={"content-encoding": "gzip"})


async def upload(request: Request) -> JSONResponse:
    form = await request.form()
    fields, files = {}, {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            data = await value.read()
            files[key] = {"filename": value.filename, "size": len(data),
                          "type": value.content_type, "sha256": hashlib.sha256(data).hexdigest()}
    return JSONResponse({"fields": fields, "files": files})


async def count(request: Request) -> PlainTextResponse:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return PlainTextResponse(str(total))


async def big(request: Request) -> StreamingResponse:
    chunk = b"x" * 65536
    chunks = int(request.query_params["mb"]) * 16

    async def body():
        for _ in range(chunks):
            yield chunk

    return StreamingResponse(body(), headers={"content-length": str(chunks * 65536)})


async def sleep(request: Request) -> PlainTextResponse:
    await asyncio.sleep(float(request.query_params["s"]))
    return PlainTextResponse("slept")


app = Starlette(routes=[
    Route("/method", method, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    Route("/redirect/{code}", redirect, methods=["GET", "POST", "PUT", "HEAD"]),
    Route("/chain/{n}", chain),
    Route("/loop", loop),
    Route("/set-cookie", set_cookie),
    Route("/cookies", cookies),
    Route("/basic", basic),
    Route("/bearer", bearer),
    Route("/digest", digest, methods=["GET", "POST"]),
    Route("/retry", retry, methods=["GET", "POST", "PUT"]),
    Route("/gzip", gzipped),
    Route("/deflate", deflated),
    Route("/bad-gzip", bad_gzip),
    Route("/upload", upload, methods=["POST"]),
    Route("/count", count, methods=["POST", "PUT"]),
    Route("/big", big),
    Route("/sleep", sleep),
])

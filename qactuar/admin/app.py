"""The admin plane's ASGI app: routing, who may do what, JSON in and out.

It never touches processes itself: every answer comes from a `Controller`
(plane.py), which knows the process model.  Checks, in order: the Host header
(DNS rebinding: a foreign name pointing at 127.0.0.1 is refused), the Origin
header (a page of another site may not drive the API), then the Bearer token
when `ADMIN_TOKEN` is set (a wrong one is 401; the read-only token on a change
is 403).  Every change is logged on `qt_server` with who made it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol
from urllib.parse import parse_qs

from qactuar.asgi.router import normalise_prefix
from qactuar.logs import server_logger

MAX_BODY = 1 << 20
READ_METHODS = ("GET", "HEAD")


class HTTPError(Exception):
    """An answer other than 200, with the reason the client reads."""

    def __init__(self, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None
                 ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


class Controller(Protocol):
    """What the admin app asks of the process model it runs in (plane.py)."""

    config: Any

    async def status(self) -> dict[str, Any]: ...
    async def metrics(self) -> str: ...
    def ready(self) -> tuple[bool, str]: ...
    async def reload(self, who: str) -> dict[str, Any]: ...
    async def scale(self, delta: int | None, count: int | None, who: str) -> dict[str, Any]: ...
    async def patch_config(self, changes: dict[str, Any], who: str) -> dict[str, Any]: ...
    async def tasks(self, pid: int | None) -> dict[str, Any]: ...
    async def list_apps(self) -> list[dict[str, Any]]: ...
    async def mount_app(self, request: dict[str, str], who: str) -> dict[str, Any]: ...
    async def unmount_app(self, route: str, who: str) -> dict[str, Any]: ...
    async def pod(self, pid: int | None) -> dict[str, Any]: ...
    async def pod_action(self, action: str, body: dict[str, Any], pid: int | None,
                         who: str) -> dict[str, Any]: ...


Request = dict[str, Any]
Handler = Callable[[Request], Awaitable[tuple[int, Any, list[tuple[bytes, bytes]]]]]

# Settings whose values GET /config does not show.
SECRETS = ("ADMIN_TOKEN", "ADMIN_READ_TOKEN", "SSL_KEY_PASSWORD")


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _loopback_host(name: str) -> bool:
    return name in ("localhost", "127.0.0.1", "[::1]", "::1") or name.startswith("127.")


class AdminApp:
    """The ASGI app of the admin plane."""

    def __init__(self, controller: Controller, dashboard: Callable[[], bytes] | None = None
                 ) -> None:
        self.controller = controller
        self.dashboard = dashboard
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/healthz"): self._healthz,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/status"): self._status,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/config"): self._get_config,
            ("PATCH", "/config"): self._patch_config,
            ("POST", "/reload"): self._reload,
            ("POST", "/workers"): self._workers,
            ("GET", "/tasks"): self._tasks,
            ("GET", "/apps"): self._list_apps,
            ("POST", "/apps"): self._mount_app,
            ("DELETE", "/apps"): self._unmount_app,
            ("GET", "/pod"): self._pod,
            ("POST", "/pod"): self._pod_add,
            ("POST", "/pod/cancel"): self._pod_cancel,
            ("POST", "/pod/restart"): self._pod_restart,
        }

    # -- the ASGI entry ------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                return
            await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        head_only = method == "HEAD"
        if head_only:
            method = "GET"
        try:
            self._check_origin(scope)
            if method == "GET" and scope["path"] == "/" and self.dashboard is not None:
                await _respond(send, 200, self.dashboard(), [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-security-policy",
                     b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
                     b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")], head_only)
                return
            handler = self.routes.get((method, scope["path"]))
            if handler is None:
                if any(path == scope["path"] for _, path in self.routes):
                    allowed = sorted({m for m, p in self.routes if p == scope["path"]})
                    raise HTTPError(405, f"method {method} not allowed on {scope['path']}",
                                    [(b"allow", ", ".join(allowed).encode())])
                raise HTTPError(404, f"no admin endpoint at {scope['path']}")
            who = self._authorise(scope, method)
            body = b"" if method in READ_METHODS else await _read_body(receive)
            request = {"scope": scope, "who": who, "body": body}
            status, payload, headers = await handler(request)
        except HTTPError as exc:
            status, payload, headers = exc.status, {"error": exc.reason}, exc.headers
        if isinstance(payload, str):
            await _respond(send, status, payload.encode(), [
                (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), *headers],
                head_only)
        else:
            await _respond(send, status, json.dumps(payload, indent=1).encode() + b"\n",
                           [(b"content-type", b"application/json"), *headers], head_only)

    # -- who may do what -----------------------------------------------------------

    def _check_origin(self, scope: dict[str, Any]) -> None:
        host = _header(scope, b"host") or ""
        unix = scope.get("client") is not None and str(scope["client"][0]).startswith("uid:")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not unix and not (_loopback_host(name) or name == self.controller.config.ADMIN_HOST):
            raise HTTPError(421, f"Host {host!r} is not this admin plane's name (a DNS "
                                 "rebinding attempt?): use localhost or ADMIN_HOST")
        origin = _header(scope, b"origin")
        if origin is not None and origin.split("://", 1)[-1] != host:
            raise HTTPError(403, f"cross-site request from Origin {origin!r} refused")

    def _authorise(self, scope: dict[str, Any], method: str) -> str:
        """Who is asking ("token admin", "uid:1000", "127.0.0.1:5555"); raise if not allowed."""
        client = scope.get("client")
        peer = f"{client[0]}" if client and str(client[0]).startswith("uid:") else (
            f"{client[0]}:{client[1]}" if client else "unknown peer")
        config = self.controller.config
        if not config.ADMIN_TOKEN:
            return peer
        given = _header(scope, b"authorization") or ""
        scheme, _, token = given.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            if hmac.compare_digest(token.encode(), config.ADMIN_TOKEN.encode()):
                return f"token admin ({peer})"
            if config.ADMIN_READ_TOKEN and hmac.compare_digest(
                    token.encode(), config.ADMIN_READ_TOKEN.encode()):
                if method not in READ_METHODS:
                    raise HTTPError(403, "the read-only token cannot make changes")
                return f"token read ({peer})"
        raise HTTPError(401, "a valid token is required: Authorization: Bearer <ADMIN_TOKEN>",
                        [(b"www-authenticate", b'Bearer realm="qactuar admin"')])

    # -- endpoints -------------------------------------------------------------------

    async def _healthz(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, {"status": "alive"}, []

    async def _readyz(self, request: Request) -> tuple[int, Any, list[Any]]:
        ready, why = self.controller.ready()
        return (200 if ready else 503), {"status": "ready" if ready else "not ready",
                                         "reason": why}, []

    async def _status(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, await self.controller.status(), []

    async def _metrics(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, await self.controller.metrics(), []

    async def _get_config(self, request: Request) -> tuple[int, Any, list[Any]]:
        shown = config_view(self.controller.config)
        return 200, shown, [(b"etag", config_etag(shown).encode())]

    async def _patch_config(self, request: Request) -> tuple[int, Any, list[Any]]:
        changes = _json_object(request["body"])
        current = config_etag(config_view(self.controller.config))
        expected = _header(request["scope"], b"if-match")
        if expected is not None and expected.strip() not in (current, "*"):
            raise HTTPError(412, f"the configuration changed since you read it (ETag is now "
                                 f"{current}): GET /config again")
        result = await self.controller.patch_config(changes, request["who"])
        shown = config_view(self.controller.config)
        return 200, {**result, "config": shown}, [(b"etag", config_etag(shown).encode())]

    async def _reload(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, await self.controller.reload(request["who"]), []

    async def _workers(self, request: Request) -> tuple[int, Any, list[Any]]:
        body = _json_object(request["body"])
        unknown = set(body) - {"delta", "count"}
        if unknown or len(body) != 1:
            raise HTTPError(400, 'give exactly one of {"delta": N} or {"count": N}'
                                 + (f"; unknown key {sorted(unknown)[0]!r}" if unknown else ""))
        (key, value), = body.items()
        if not isinstance(value, int) or isinstance(value, bool):
            raise HTTPError(400, f"{key} must be an integer, not {value!r}")
        result = await self.controller.scale(value if key == "delta" else None,
                                             value if key == "count" else None, request["who"])
        return 200, result, []

    async def _tasks(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, await self.controller.tasks(_pid_asked(request)), []

    async def _pod(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, await self.controller.pod(_pid_asked(request)), []

    async def _pod_add(self, request: Request) -> tuple[int, Any, list[Any]]:
        return await self._pod_action("add", request)

    async def _pod_cancel(self, request: Request) -> tuple[int, Any, list[Any]]:
        return await self._pod_action("cancel", request)

    async def _pod_restart(self, request: Request) -> tuple[int, Any, list[Any]]:
        return await self._pod_action("restart", request)

    async def _pod_action(self, action: str, request: Request) -> tuple[int, Any, list[Any]]:
        from qactuar.admin.pod_view import check_action  # pod_view imports this module

        body = _json_object(request["body"])
        pid = _pid_asked(request)
        if "pid" in body:
            if not isinstance(body["pid"], int) or isinstance(body["pid"], bool):
                raise HTTPError(400, f"pid must be a number, not {body['pid']!r}")
            pid = body["pid"]
        checked = check_action(action, body)
        return 200, await self.controller.pod_action(action, checked, pid, request["who"]), []

    async def _list_apps(self, request: Request) -> tuple[int, Any, list[Any]]:
        return 200, {"apps": await self.controller.list_apps()}, []

    async def _mount_app(self, request: Request) -> tuple[int, Any, list[Any]]:
        from qactuar.admin.apps import parse_request  # apps.py imports this module

        wanted = parse_request(_json_object(request["body"]))
        return 200, await self.controller.mount_app(wanted, request["who"]), []

    async def _unmount_app(self, request: Request) -> tuple[int, Any, list[Any]]:
        query = parse_qs(request["scope"]["query_string"].decode("latin-1"))
        if "route" not in query:
            raise HTTPError(400, "give the route to unmount: DELETE /apps?route=/api")
        route = normalise_prefix(query["route"][0])
        return 200, await self.controller.unmount_app(route, request["who"]), []


def _pid_asked(request: Request) -> int | None:
    """The `?pid=N` of a request, if any."""
    query = parse_qs(request["scope"]["query_string"].decode("latin-1"))
    if "pid" not in query:
        return None
    try:
        return int(query["pid"][0])
    except ValueError:
        raise HTTPError(400, f"pid must be a number, not {query['pid'][0]!r}") from None


def log_change(who: str, what: str) -> None:
    server_logger.info("admin: %s (by %s)", what, who)


def config_view(config: Any) -> dict[str, Any]:
    shown = asdict(config)
    for key in SECRETS:
        if shown.get(key):
            shown[key] = "(set)"
    return shown


def config_etag(shown: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode())
    return f'"{digest.hexdigest()[:16]}"'


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"null")
    except (ValueError, RecursionError) as exc:
        raise HTTPError(400, f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HTTPError(400, f"expected a JSON object, got {type(value).__name__}")
    return value


async def _read_body(receive: Any) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise HTTPError(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPError(413, f"request body over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]],
                   head_only: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b"" if head_only else body})

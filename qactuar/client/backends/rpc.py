"""XML-RPC and JSON-RPC 2.0 as HTTP requests: the bodies sent, the results read, and the
async interface's stubs (`Client.rpc(url)`, `Client.jsonrpc(url)`).

XML-RPC uses the standard library's marshalling; JSON-RPC 2.0 sends
`{"jsonrpc": "2.0", "method", "params", "id"}` and reads `result` or `error`.
A fault (XML-RPC) or an error object (JSON-RPC) is the call's answer: the
aquests Response's `data` is the `xmlrpc.client.Fault` / `JSONRPCFault` (as
aquests showed faults), and the async stub raises it.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

_ids = itertools.count(1)


class JSONRPCFault(Exception):
    """A JSON-RPC 2.0 error object: `code`, `message`, `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"<JSONRPCFault {self.code}: {self.message!r}>"


def xmlrpc_body(method: str, params: tuple[Any, ...]) -> bytes:
    import xmlrpc.client

    return xmlrpc.client.dumps(params, method, allow_none=True).encode()


def xmlrpc_result(body: bytes) -> Any:
    """An XML-RPC answer: its one value (or tuple), or the Fault it carries."""
    import xmlrpc.client

    try:
        values, _ = xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as fault:
        return fault
    except Exception as error:  # not XML-RPC: say so rather than hand back bytes
        return ValueError(f"not an XML-RPC answer: {error}")
    return values[0] if len(values) == 1 else values


def jsonrpc_body(method: str, params: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A JSON-RPC 2.0 request: positional params as a list, keyword ones as an object."""
    if params and kwargs:
        raise TypeError(f"{method}(): JSON-RPC takes positional or keyword params, not both")
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(_ids)}
    if params or kwargs:
        request["params"] = dict(kwargs) if kwargs else list(params)
    return json.dumps(request).encode()


def jsonrpc_result(body: bytes) -> Any:
    """A JSON-RPC answer's result, or the JSONRPCFault its error object describes."""
    try:
        answer = json.loads(body)
    except ValueError as error:
        return ValueError(f"not a JSON-RPC answer: {error}")
    if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        return ValueError("not a JSON-RPC 2.0 answer")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        return JSONRPCFault(error.get("code", 0), str(error.get("message", "")),
                            error.get("data"))
    return answer.get("result")


class AsyncRPCStub:
    """`await client.rpc(url).method(*params)`: the result, or raises the fault (and
    the client's errors, HTTPStatusError for a 4xx/5xx answer)."""

    def __init__(self, client: Any, url: str, protocol: str, headers: Any = None,
                 auth: Any = None, prefix: str = "") -> None:
        self._client = client
        self._url = url
        self._protocol = protocol
        self._headers = headers
        self._auth = auth
        self._prefix = prefix

    def __getattr__(self, name: str) -> AsyncRPCStub:
        if name.startswith("__"):
            raise AttributeError(name)
        return AsyncRPCStub(self._client, self._url, self._protocol, self._headers,
                            self._auth, f"{self._prefix}{name}.")

    async def __call__(self, *params: Any, **kwargs: Any) -> Any:
        method = self._prefix.rstrip(".")
        if not method:
            raise TypeError("call a method of the stub: stub.method(*params)")
        xml = self._protocol == "xmlrpc"
        if xml and kwargs:
            raise TypeError(f"{method}(): XML-RPC takes positional params only")
        body = xmlrpc_body(method, params) if xml else jsonrpc_body(method, params, kwargs)
        fields = [("Content-Type", "text/xml" if xml else "application/json")]
        if self._headers:
            items = self._headers.items() if hasattr(self._headers, "items") else self._headers
            fields += [(str(k), str(v)) for k, v in items]
        extra: dict[str, Any] = {}
        if self._auth is not None:
            extra["auth"] = self._auth
        answer = await self._client.post(self._url, content=body, headers=fields, **extra)
        answer.raise_for_status()
        result = xmlrpc_result(answer.content) if xml else jsonrpc_result(answer.content)
        if isinstance(result, Exception):
            raise result
        return result

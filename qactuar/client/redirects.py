"""The request that follows a redirect (RFC 9110 15.4), or None to stop there.

303 turns any method but HEAD into GET; 301 and 302 turn POST into GET (what
every browser does and servers expect); 307 and 308 repeat the method and the
body, which we can only do for a body held in memory.  Credentials never follow
a redirect to another origin, and the cookie field is rebuilt by the jar for
the new URL.
"""

from __future__ import annotations

from typing import Any

from qactuar.client.errors import RedirectError
from qactuar.client.urls import InvalidURL, join_url, parse_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BODY_FIELDS = frozenset({b"content-length", b"content-type", b"transfer-encoding"})
_CREDENTIAL_FIELDS = frozenset({b"authorization", b"proxy-authorization"})


def next_request(client: Any, request: Any, response: Any) -> Any:
    location = response.headers.get("location")
    if not location:
        return None
    try:
        parsed = parse_url(join_url(request.url, location))
    except InvalidURL as error:
        raise RedirectError(f"the redirect to {location!r} cannot be followed: "
                            f"{error.message}") from None
    status = response.status_code
    method = request.method
    content = request.content
    body_stream = request.body_stream
    drop = {b"cookie"}
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
        content = None
        body_stream = None
        drop |= _BODY_FIELDS
    elif body_stream is not None:
        return None  # a streamed body was consumed: it cannot be sent again
    if parsed.origin != request.parsed.origin:
        drop |= _CREDENTIAL_FIELDS
    fields = [field for field in request.fields if field[0].lower() not in drop]
    return type(request)(method, parsed, fields, content, body_stream)

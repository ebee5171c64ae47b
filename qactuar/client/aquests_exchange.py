"""One aquests request on the wire: an HTTP exchange through the engine, or a WebSocket
exchange, each ending as the `AquestsResponse` its callback receives.

Owns what happens between taking a queued request and having its response: the
engine call (streamed only when Accept-Content-Length must stop the body early),
the Content-Type (717), Accept (718) and size (719) checks, the 7xx response of a
failure, the redirect history, the session's cookies, an XML-RPC result, and `ws()`'s
connect-send-receive.  The scheduling, callbacks and configuration are
`aquests.py`'s; `session` is its `_Session`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from qactuar.client.aquests_request import (
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    QueuedRequest,
    accepts,
)
from qactuar.client.aquests_response import AquestsRequest, AquestsResponse, HeaderDict
from qactuar.client.errors import (
    ClientError,
    ContentTooLarge,
    InvalidContentType,
    ReadTimeout,
    UnacceptableContentType,
    UnexpectedError,
)

# A media type as RFC 9110 8.3.1 writes it: type "/" subtype (tokens), then parameters.
_MEDIA_TYPE = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+/[-!#$%&'*+.^_`|~0-9A-Za-z]+[ \t]*(;.*)?",
                         re.DOTALL)


def sent_request(request: QueuedRequest) -> AquestsRequest:
    """`response.request` of an answer the engine could not give (what was queued)."""
    return AquestsRequest(request.method, request.url, HeaderDict(request.headers),
                          request.content)


async def http_exchange(client: Any, request: QueuedRequest, session: Any) -> AquestsResponse:
    """One HTTP request through the engine; a failure becomes its 7xx response."""
    kwargs: dict[str, Any] = {"headers": request.headers}
    if request.auth is not None:
        kwargs["auth"] = request.auth
    if request.files is not None:
        kwargs["data"] = request.data
        kwargs["files"] = request.files
    elif request.content is not None:
        kwargs["content"] = request.content
    logger_ = session.logger
    try:
        if request.max_length is None or request.method == "HEAD":
            # Only a size cap needs the body streamed (to stop reading at the cap); the
            # Accept check (718) is made on the whole answer, which costs less per request.
            answer = await client.request(request.method, request.url, **kwargs)
            if request.accept is not None or request.max_length is not None:
                _check_head(request, answer)
            body = answer.content
        else:
            stream = client.stream(request.method, request.url, **kwargs)
            try:
                # The engine bounds each wait itself; this also bounds the wait for the
                # head of a streamed answer, whatever happens below.
                async with asyncio.timeout(float(session.timeout) * 2):
                    answer = await stream.__aenter__()
            except TimeoutError:
                raise ReadTimeout(f"{request.url}: no answer within "
                                  f"{session.timeout}s") from None
            try:
                _check_head(request, answer)
                body = await _read_limited(request, answer)
            finally:
                await stream.__aexit__(None, None, None)
    except ClientError as error:
        return AquestsResponse.failed(request.meta, sent_request(request), error, logger_)
    except Exception as error:  # a bug of ours: 701, with the traceback for the report
        if hasattr(logger_, "trace"):
            logger_.trace()
        failure = UnexpectedError(f"{type(error).__name__}: {error}")
        return AquestsResponse.failed(request.meta, sent_request(request), failure, logger_)
    return _http_response(request, answer, body, logger_, session)


def _check_head(request: QueuedRequest, answer: Any) -> None:
    content_type = answer.headers.get("content-type")
    # An empty untyped answer (204, a HEAD, an empty body) has no type to refuse.
    has_body = content_type is not None or answer.headers.get("content-length") not in ("0",
                                                                                     None)
    if request.accept is not None and has_body and content_type is not None \
            and not _MEDIA_TYPE.fullmatch(content_type):
        raise InvalidContentType(f"{request.url}: the response's Content-Type "
                                 f"{content_type!r} is not a media type, so the request's "
                                 "Accept cannot be checked")
    if request.accept is not None and has_body and not accepts(request.accept, content_type):
        raise UnacceptableContentType(
            f"{request.url}: the response is {content_type or 'untyped'}, "
            f"the request accepts {request.accept}")
    length = answer.headers.get("content-length")
    if request.max_length is not None and length is not None and length.isdigit() \
            and int(length) > request.max_length:
        raise ContentTooLarge(f"{request.url}: the response has {length} bytes, "
                              f"Accept-Content-Length allows {request.max_length}")


async def _read_limited(request: QueuedRequest, answer: Any) -> bytes:
    limit = request.max_length
    if limit is None:
        return await answer.aread()
    chunks = []
    size = 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ContentTooLarge(f"{request.url}: the response passed {limit} bytes, "
                                  "the Accept-Content-Length of the request")
        chunks.append(chunk)
    return b"".join(chunks)


def _version(http_version: str) -> str:
    return "2.0" if http_version == "HTTP/2" else http_version.removeprefix("HTTP/")


def _http_response(request: QueuedRequest, answer: Any, body: bytes, logger_: Any,
                   session: Any) -> AquestsResponse:
    sent = answer.request
    if sent is not None:
        record = AquestsRequest(sent.method, sent.url, HeaderDict(sent.headers.items()),
                                sent.content)
    else:
        record = sent_request(request)
    history = [_http_response(request, earlier, earlier._body or b"", logger_, session)
               for earlier in answer.history]
    cookies = answer.cookies
    jar = session.cookie_jar if session.cookie else None
    if jar is not None:
        from qactuar.client.urls import parse_url

        field = jar.header_for(parse_url(answer.url))
        if field:
            cookies = dict(part.split("=", 1) for part in field.decode("latin-1").split("; ")
                           if "=" in part)
    response = AquestsResponse(request.meta, record, status_code=answer.status_code,
                               reason=answer.reason, version=_version(answer.http_version),
                               body=body, header_pairs=answer.headers.items(), url=answer.url,
                               history=history, cookies=cookies, logger=logger_, jar=jar)
    if request.rpc_method is not None and answer.status_code == 200:
        from qactuar.client.backends.rpc import jsonrpc_result, xmlrpc_result

        read = jsonrpc_result if request.rpc_protocol == "jsonrpc" else xmlrpc_result
        response.set_data(read(body))
    return response


async def websocket_exchange(request: QueuedRequest, session: Any) -> AquestsResponse:
    """Connect, send the one message, answer with the next message (or the close)."""
    from qactuar.client import websocket

    seconds = float(session.timeout)
    sent = sent_request(request)
    logger_ = session.logger
    try:
        # wss:// offers HTTP/2 by ALPN (RFC 8441) and falls back to HTTP/1.1; ws:// stays
        # HTTP/1.1 (h2c prior knowledge would fail on servers without it).
        http2 = request.name == "wss" and not session.force_http1
        async with websocket.connect(request.url, headers=request.headers,
                                     open_timeout=seconds, close_timeout=seconds,
                                     verify=session.verify, cert=session.cert,
                                     http2=http2) as channel:
            answer = await asyncio.wait_for(_ws_send_and_receive(channel, request.message),
                                            seconds)
            headers = channel.headers
            version = _version(channel.http_version)
    except websocket.WebSocketRefused as refused:
        if refused.status < 400:  # not a refusal, just no switch: 716
            return AquestsResponse.failed(request.meta, sent, refused, logger_)
        return AquestsResponse(request.meta, sent, status_code=refused.status,
                               reason=refused.reason, version="1.1", body=refused.body,
                               header_pairs=refused.headers, error=refused, opcode=-1,
                               logger=logger_)
    except websocket.WebSocketClosed:
        # aquests: connected, but closed before a message came (opcode -1).
        return AquestsResponse(request.meta, sent, status_code=200, reason="OK",
                               version="1.1", opcode=-1, logger=logger_)
    except TimeoutError:
        failure = ReadTimeout(f"{request.url}: no WebSocket message within {seconds}s")
        return AquestsResponse.failed(request.meta, sent, failure, logger_)
    except ClientError as error:
        return AquestsResponse.failed(request.meta, sent, error, logger_)
    return AquestsResponse(request.meta, sent, status_code=200, reason="OK", version=version,
                           header_pairs=headers, opcode=answer.opcode, message=answer.data,
                           logger=logger_)


async def _ws_send_and_receive(channel: Any, message: tuple[int, Any] | None) -> Any:
    from qactuar.client.websocket import WebSocketClosed

    if message is not None:
        opcode, data = message
        try:
            if opcode == OPCODE_PING:
                await channel.ping(data)
            elif opcode == OPCODE_PONG:
                await channel.pong(data)
            elif opcode == OPCODE_CLOSE:
                await channel.close(1000, data)
            else:
                await channel.send(data)
        except WebSocketClosed:
            pass  # the server closed first: its close frame is the answer
    return await channel.recv_message(control=True)

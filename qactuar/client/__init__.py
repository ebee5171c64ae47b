"""qactuar.client: an asynchronous multiplexing HTTP client (HTTP/1.1 and HTTP/2).

    async with Client() as client:
        response = await client.get("https://example.org/")

The engine (connection pools, the HTTP/1.1 and HTTP/2 connections, TLS,
proxies) and the async interface live here; `qactuar.client.aquests` is the
aquests module interface on top of it.  See docs/client.md.
"""

from qactuar.client.api import Client, OutgoingRequest
from qactuar.client.auth import Auth, BasicAuth, BearerAuth, DigestAuth
from qactuar.client.cookies import CookieJar
from qactuar.client.errors import (
    CODES,
    AuthError,
    ChannelClosed,
    ClientClosed,
    ClientError,
    ConnectError,
    ConnectionClosed,
    ConnectTimeout,
    ContentTooLarge,
    DecodingError,
    HTTP2ConnectionError,
    HTTPStatusError,
    InvalidContentType,
    NameResolutionError,
    NoResponse,
    PoolTimeout,
    ProtocolError,
    ProtocolSwitchError,
    ProxyError,
    ReadTimeout,
    RedirectError,
    RequestTimeout,
    ResponseHeaderError,
    ShutdownError,
    SocketError,
    StreamReset,
    TLSError,
    TotalTimeout,
    UnacceptableContentType,
    UnexpectedError,
    WriteTimeout,
)
from qactuar.client.models import Headers, Request, Response
from qactuar.client.settings import Limits, Timeout
from qactuar.client.urls import InvalidURL

__all__ = [
    "CODES", "Auth", "AuthError", "BasicAuth", "BearerAuth", "ChannelClosed", "Client",
    "ClientClosed", "ClientError", "ConnectError", "ConnectTimeout", "ConnectionClosed",
    "ContentTooLarge", "CookieJar", "DecodingError", "DigestAuth", "HTTP2ConnectionError",
    "HTTPStatusError", "Headers", "InvalidContentType", "InvalidURL", "Limits",
    "NameResolutionError", "NoResponse", "OutgoingRequest", "PoolTimeout", "ProtocolError",
    "ProtocolSwitchError", "ProxyError", "ReadTimeout", "RedirectError", "Request",
    "RequestTimeout", "Response", "ResponseHeaderError", "ShutdownError", "SocketError",
    "StreamReset", "TLSError", "Timeout", "TotalTimeout", "UnacceptableContentType",
    "UnexpectedError", "WriteTimeout",
]

# The aquests module interface (`from qactuar import client as aquests`): configure(),
# get()/post()/..., ws(), fetchall().  Owned by qactuar/client/aquests.py.
from qactuar.client.aquests import *  # noqa: F403

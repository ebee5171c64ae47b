"""Every failure of a request that is not an HTTP response, and its aquests 7xx code.

The numbers follow aquests' table (its `protocols/http/respcodes.py`), so a
script written for aquests reads the same codes; the classes say what went
wrong in Python terms.  `CODES` is the whole table, including the codes only the
aquests interface and the WebSocket client raise.  This module knows nothing of
sockets or protocols: the engine chooses the class, this module names it.
"""

from __future__ import annotations

from typing import Any

# code -> (short name, what it means for the request)
CODES: dict[int, tuple[str, str]] = {
    700: ("Socket Error", "the connection was closed or reset before the response ended"),
    701: ("Exception Occurred", "an unexpected error inside the client (a bug: please report)"),
    702: ("Socket Timeout", "connect, read, write or pool timeout"),
    703: ("Socket Panic", "an operating-system socket error other than a close or reset"),
    704: ("DNS Not Found", "the host name could not be resolved"),
    705: ("Entered Shutdown Process", "the Client is closed; no new request is started"),
    706: ("Unknown Authentication Method", "the server's challenge cannot be answered"),
    707: ("HTTP Header/Body Error", "malformed response body: bad chunking, body past "
                                    "Content-Length, bad HTTP/2 framing of the response"),
    708: ("No Data Received", "the server closed the connection without answering"),
    709: ("Invalid Content", "the body cannot be decoded (bad gzip/deflate data)"),
    710: ("Channel Closed", "the WebSocket closed before the exchange ended"),
    711: ("Redirect Error", "too many redirects, or a redirect without a usable Location"),
    712: ("Controlled Shutdown", "the Client was closed while this request was in flight"),
    713: ("SSL Handshake Failure", "TLS failed: certificate not trusted, wrong host, protocol"),
    714: ("Connection Failure", "the connection (or the proxy tunnel) could not be opened"),
    715: ("Response Header Error", "malformed or too large status line or header fields"),
    716: ("Protocol Switching Failure", "the server did not switch to the protocol asked for "
                                        "(WebSocket upgrade, HTTP/2 prior knowledge)"),
    717: ("Invalid Content Type", "the response's Content-Type cannot be read"),
    718: ("Unacceptable Content Type", "the response's type is refused by the request's Accept"),
    719: ("Too Large Content", "the response is larger than Accept-Content-Length allows"),
    720: ("HTTP2 Connection Closed", "the HTTP/2 connection ended (GOAWAY or protocol error)"),
    721: ("HTTP2 Stream Reset", "the server reset this request's HTTP/2 stream"),
    722: ("Object Timeout", "the request's total timeout ran out"),
}


class ClientError(Exception):
    """A request failed without an HTTP response; `code` is its aquests 7xx code."""

    code = 701
    # True when the request was never answered on a connection that had served others:
    # the server may have closed it as we sent, so one more try on a new one is safe.
    reused = False

    def __init__(self, message: str, *, request: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request

    def __str__(self) -> str:
        return f"{self.code} {CODES[self.code][0]}: {self.message}"


class ConnectionClosed(ClientError):
    code = 700


class UnexpectedError(ClientError):
    code = 701


class RequestTimeout(ClientError):
    """Connect, read, write or pool timeout (the total timeout is TotalTimeout, 722)."""

    code = 702


class ConnectTimeout(RequestTimeout):
    pass


class ReadTimeout(RequestTimeout):
    pass


class WriteTimeout(RequestTimeout):
    pass


class PoolTimeout(RequestTimeout):
    pass


class SocketError(ClientError):
    code = 703


class NameResolutionError(ClientError):
    code = 704


class ClientClosed(ClientError):
    code = 705


class AuthError(ClientError):
    code = 706


class ProtocolError(ClientError):
    """The response broke HTTP's rules (the framing of its body)."""

    code = 707


class NoResponse(ClientError):
    code = 708


class DecodingError(ClientError):
    code = 709


class ChannelClosed(ClientError):
    code = 710


class RedirectError(ClientError):
    code = 711


class ShutdownError(ClientError):
    code = 712


class TLSError(ClientError):
    code = 713


class ConnectError(ClientError):
    code = 714


class ProxyError(ConnectError):
    """The proxy refused or failed the tunnel or the SOCKS5 handshake."""


class ResponseHeaderError(ProtocolError):
    """A bad status line or header field, or a head larger than the limit."""

    code = 715


class ProtocolSwitchError(ClientError):
    code = 716


class InvalidContentType(ClientError):
    code = 717


class UnacceptableContentType(ClientError):
    code = 718


class ContentTooLarge(ClientError):
    code = 719


class HTTP2ConnectionError(ClientError):
    code = 720


class StreamReset(ClientError):
    code = 721


class TotalTimeout(ClientError):
    code = 722


class HTTPStatusError(Exception):
    """`raise_for_status()` on a 4xx/5xx response; not a ClientError (there was a response)."""

    def __init__(self, message: str, *, response: Any) -> None:
        super().__init__(message)
        self.response = response
        self.code = response.status_code


def error_class(code: int) -> type[ClientError]:
    """The class raised for `code` (the first one defined with it)."""
    for cls in _ALL:
        if cls.code == code:
            return cls
    raise KeyError(code)


_ALL: list[type[ClientError]] = [
    ConnectionClosed, UnexpectedError, RequestTimeout, SocketError, NameResolutionError,
    ClientClosed,
    AuthError, ProtocolError, NoResponse, DecodingError, ChannelClosed, RedirectError,
    ShutdownError, TLSError, ConnectError, ResponseHeaderError, ProtocolSwitchError,
    InvalidContentType, UnacceptableContentType, ContentTooLarge, HTTP2ConnectionError,
    StreamReset, TotalTimeout,
]

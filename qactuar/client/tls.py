"""The TLS context of a Client: verification on by default, a custom CA, a client certificate.

Built once per Client (loading the system's CA store costs milliseconds) and
shared by every https connection it opens.  ALPN offers h2 when HTTP/2 is
wanted.  This module raises ValueError for bad arguments; the engine turns
handshake failures into TLSError (713).
"""

from __future__ import annotations

import os
import ssl
from typing import Any


def client_context(verify: Any = True, cert: Any = None, http2: bool = True) -> ssl.SSLContext:
    """An SSLContext for a client.

    verify: True (the system's CAs), False (no verification: testing only), a path to a
        CA bundle file or directory, or an ssl.SSLContext (used as it is, ALPN added).
    cert: a client certificate: a path to a PEM with the key, or (cert, key) or
        (cert, key, password).
    """
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is True:
        context = ssl.create_default_context()
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        if os.path.isdir(path):
            context = ssl.create_default_context(capath=path)
        elif os.path.isfile(path):
            context = ssl.create_default_context(cafile=path)
        else:
            raise ValueError(f"verify: no CA file or directory at {path!r}")
    else:
        raise ValueError(f"verify must be True, False, a CA path or an SSLContext, not {verify!r}")
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            context.load_cert_chain(os.fspath(cert))
        elif isinstance(cert, tuple) and 2 <= len(cert) <= 3:
            context.load_cert_chain(*cert)
        else:
            raise ValueError("cert must be a path or a (cert, key[, password]) tuple")
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context


def negotiated_http2(transport: Any) -> bool:
    """Whether the TLS handshake on `transport` chose h2 by ALPN."""
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"

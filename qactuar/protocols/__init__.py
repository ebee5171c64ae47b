"""Wire protocols: bytes in, calls on an ASGI stream out, and back.

Modules here never build ASGI messages; they call a stream's methods.
"""


def http2_enabled(setting: str) -> bool:
    """HTTP2: `on` serves HTTP/2 beside HTTP/1.1 and `only` serves HTTP/2 alone; `off` never.

    `auto` (the default, from when h2 was optional) means `on`: h2 is a
    dependency, always installed.
    """
    return setting != "off"


def http1_enabled(setting: str) -> bool:
    """HTTP2 = `only`: a connection that does not open with the HTTP/2 preface is refused."""
    return setting != "only"

"""Wire protocols: bytes in, calls on an ASGI stream out, and back.

Modules here never build ASGI messages; they call a stream's methods.
"""

import functools


@functools.cache
def http2_enabled(setting: str) -> bool:
    """HTTP2: `on` needs the `h2` package, `auto` uses it when importable, `off` never."""
    if setting == "off":
        return False
    try:
        import h2  # noqa: F401
    except ImportError:
        if setting == "on":
            from qactuar.config import ConfigError

            raise ConfigError("config key HTTP2 = 'on': the h2 package is not installed") from None
        return False
    return True

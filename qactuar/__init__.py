"""Qactuar: an ASGI 3.0 server that lets you choose how concurrency is organised.

The public API is `run()` and `Config`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.4.0"

# Before any other qactuar module is imported: QACTUAR_PURE_PYTHON=1 must decide
# whether the hot-path modules load compiled or from their .py files.
from qactuar._build import use_pure_python_if_asked

use_pure_python_if_asked()

__all__ = ["Config", "__version__", "run"]


def __getattr__(name: str) -> Any:
    """`Config` and `run` are imported when first asked for: `qactuar load` and the client
    start without the server's modules (about 60 ms of imports)."""
    if name == "Config":
        from qactuar.config import Config

        return Config
    if name == "run":
        from qactuar.server import run

        return run
    raise AttributeError(f"module 'qactuar' has no attribute {name!r}")

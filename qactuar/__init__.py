"""Qactuar: an ASGI 3.0 server that lets you choose how concurrency is organised.

The public API is `run()` and `Config`.
"""

from __future__ import annotations

__version__ = "0.4.0"

from qactuar.config import Config
from qactuar.server import run

__all__ = ["Config", "__version__", "run"]

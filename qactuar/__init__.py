"""Qactuar: an ASGI 3.0 server that lets you choose how concurrency is organised.

The public API is `run()` and `Config`.
"""

from __future__ import annotations

__version__ = "0.4.0"

# Before any other qactuar module is imported: QACTUAR_PURE_PYTHON=1 must decide
# whether the hot-path modules load compiled or from their .py files.
from qactuar._build import use_pure_python_if_asked

use_pure_python_if_asked()

from qactuar.config import Config  # noqa: E402
from qactuar.server import run  # noqa: E402

__all__ = ["Config", "__version__", "run"]

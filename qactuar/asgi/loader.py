"""Import an app from a "module:attr" string, failing with one clear line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from qactuar.config import ConfigError
from qactuar.logs import exception_logger


class AppLoadError(ConfigError):
    """The app named on the command line or in APPS cannot be loaded."""


def add_app_dir(app_dir: str) -> None:
    """Put the directory apps are imported from first on sys.path."""
    path = str(Path(app_dir).resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def import_app(target: str) -> Any:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise AppLoadError(f'app {target!r} must be given as "module:attribute"')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if missing == module_name or module_name.startswith(missing + "."):
            reason = f"no module named {missing!r}"
        else:
            reason = f"module {module_name!r} imports {missing!r}, which cannot be found"
        raise AppLoadError(f"cannot import app {target!r}: {reason}") from None
    except ImportError as exc:
        raise AppLoadError(f"cannot import app {target!r}: {exc}") from None
    except Exception as exc:
        # The module's own code failed: its traceback is what the user needs,
        # then the one line that says the app could not be loaded.
        exception_logger.error("importing module %r raised", module_name, exc_info=exc)
        raise AppLoadError(f"cannot import app {target!r}: importing {module_name!r} raised "
                           f"{type(exc).__name__}: {exc}") from None
    app: Any = module
    for part in attr_path.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise AppLoadError(
                f"cannot import app {target!r}: module {module_name!r} has no attribute "
                f"{attr_path!r}"
            ) from None
    if not callable(app):
        raise AppLoadError(f"app {target!r} is not callable (got {type(app).__name__})")
    return app


def call_factory(target: str) -> Any:
    """`--factory`: import "module:function" and call it for the app, with clear errors."""
    factory = import_app(target)
    try:
        app = factory()
    except Exception as exc:
        exception_logger.error("the app factory %r raised", target, exc_info=exc)
        raise AppLoadError(f"app factory {target!r} raised {type(exc).__name__}: {exc}"
                           ) from None
    if not callable(app):
        raise AppLoadError(f"app factory {target!r} returned {type(app).__name__}, "
                           "not an ASGI app")
    return app

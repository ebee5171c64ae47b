"""Logging: the default `LOGS` dict, the four loggers and the access-log line.

The loggers are `qt_server` (the serving process), `qt_child` (worker and child
processes), `qt_access` (one line per request) and `qt_exception` (errors with
tracebacks).  `LOGS` goes to `logging.config.dictConfig` whole: replacing it
replaces the entire setup.  Text that came from a client is escaped before it
reaches a log line, so a request cannot forge log entries.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from qactuar.errors import ConfigError

server_logger = logging.getLogger("qt_server")
child_logger = logging.getLogger("qt_child")
access_logger = logging.getLogger("qt_access")
exception_logger = logging.getLogger("qt_exception")


def default_log_config() -> dict[str, Any]:
    """The default `LOGS` of the original Qactuar README."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "standard": {"format": "{asctime} {levelname} {message}", "style": "{"},
            "access": {"format": "{asctime} ACCESS {message}", "style": "{"},
            # Worker and child lines say which process wrote them.
            "child": {"format": "{asctime} {levelname} [pid {process}] {message}",
                      "style": "{"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "level": "DEBUG",
                "formatter": "standard",
                "stream": "ext://sys.stdout",
            },
            "access": {
                "class": "logging.StreamHandler",
                "level": "INFO",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
            "child": {
                "class": "logging.StreamHandler",
                "level": "DEBUG",
                "formatter": "child",
                "stream": "ext://sys.stdout",
            },
            "exception": {
                "class": "logging.StreamHandler",
                "level": "ERROR",
                "formatter": "standard",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "qt_server": {"handlers": ["console"], "level": "DEBUG"},
            "qt_child": {"handlers": ["child"], "level": "DEBUG"},
            "qt_access": {"handlers": ["access"], "level": "INFO"},
            "qt_exception": {"handlers": ["exception"], "level": "ERROR"},
        },
    }


def configure_logging(logs: dict[str, Any]) -> None:
    """Apply a `LOGS` dict; a broken one is a configuration error."""
    try:
        logging.config.dictConfig(logs)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if exc.__cause__ is not None:  # e.g. the directory of a log file is missing
            reason += f": {exc.__cause__}"
        raise ConfigError(f"config key LOGS is not a valid dictConfig: {reason}") from None


def _escape_char(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """Make client-controlled text safe for a single log line.

    Every non-printable character (C0 and C1 controls, DEL, Unicode line and
    paragraph separators) becomes a visible escape; a backslash is doubled so
    an escape in the log cannot be forged either.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(char) for char in text)


def log_access(
    client: tuple[str, int] | None,
    method: str,
    path: str,
    query: bytes,
    http_version: str,
    status: int,
    sent_bytes: int,
    duration: float,
) -> None:
    """Write the one access line of a request: who, what, outcome, size, time."""
    who = f"{client[0]}:{client[1]}" if client else "-"
    target = path + "?" + query.decode("latin-1") if query else path
    # The same facts as named record attributes, for JSON lines and custom formatters
    # (log_format.py documents them).
    fields = {"client": who, "method": method, "path": target, "status": status,
              "bytes": sent_bytes, "duration_ms": round(duration * 1000.0, 3),
              "protocol": "HTTP/" + http_version}
    access_logger.info(
        '%s "%s %s HTTP/%s" %d %d %.1fms',
        who,
        escape(method),
        escape(target),
        http_version,
        status,
        sent_bytes,
        duration * 1000.0,
        extra=fields,
    )

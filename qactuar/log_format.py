"""The logging set-up a Config asks for: LOG_FORMAT (text or json), LOG_LEVEL, LOG_CONFIG.

`JsonFormatter` writes one JSON object per line: `time`, `level`, `logger`,
`pid`, `message`, and for access lines the named fields `client`, `method`,
`path`, `status`, `bytes`, `duration_ms` and `protocol` (logs.log_access sets
them on the record), plus a traceback as `exception`.  Add fields of your own
with `"static": {"service": "shop"}` in the formatter's dictConfig entry, or
subclass it and extend `fields()`.  `logging_setup` picks the dictConfig
dictionary to apply: the LOG_CONFIG file, else LOGS (its JSON variant when
LOG_FORMAT is json and LOGS is the default), with LOG_LEVEL on qactuar's loggers.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from qactuar.errors import ConfigError
from qactuar.logs import default_log_config

if TYPE_CHECKING:
    from qactuar.config import Config

# The access line's fields, as logs.log_access sets them on its record.
ACCESS_FIELDS = ("client", "method", "path", "status", "bytes", "duration_ms", "protocol")
QACTUAR_LOGGERS = ("qt_server", "qt_child", "qt_access")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (see the module docstring for its fields)."""

    def __init__(self, static: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.static = dict(static or {})
        import json  # here, not at the top: a start with text logs does without it

        self._dumps = json.dumps

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The object written for `record`; extend it in a subclass to add fields."""
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        data.update(self.static)
        return data

    def format(self, record: logging.LogRecord) -> str:
        # ensure_ascii: a client's text can never end a line or forge one.
        return self._dumps(self.fields(record), ensure_ascii=True, default=str)


def json_log_config() -> dict[str, Any]:
    """The default LOGS with every handler writing JSON lines."""
    logs = default_log_config()
    logs["formatters"] = {"json": {"()": "qactuar.log_format.JsonFormatter"}}
    for handler in logs["handlers"].values():
        handler["formatter"] = "json"
    return logs


def read_log_config(path: str) -> dict[str, Any]:
    """A dictConfig dictionary from a JSON or TOML file (LOG_CONFIG)."""
    import json
    import tomllib
    from pathlib import Path

    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"config key LOG_CONFIG = {path!r}: cannot read it: "
                          f"{exc.strerror}") from None
    try:
        data = (tomllib.loads(text.decode("utf-8")) if path.lower().endswith(".toml")
                else json.loads(text))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config key LOG_CONFIG = {path!r}: not valid: {exc}") from None
    if not isinstance(data, dict) or "version" not in data:
        raise ConfigError(f"config key LOG_CONFIG = {path!r}: the file must hold a "
                          "logging.config.dictConfig object (with \"version\": 1)")
    return data


def logging_setup(config: Config) -> dict[str, Any]:
    """The dictConfig dictionary this Config asks for."""
    if config.LOG_CONFIG:
        return read_log_config(config.LOG_CONFIG)
    if config.LOG_FORMAT == "json" and default_log_config() == config.LOGS:
        return json_log_config()
    return config.LOGS


def apply_log_level(level: str) -> None:
    """LOG_LEVEL: the level of qactuar's loggers (qt_exception stays at ERROR)."""
    if not level:
        return
    number = getattr(logging, level.upper())
    for name in QACTUAR_LOGGERS:
        logging.getLogger(name).setLevel(number)

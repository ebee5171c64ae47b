"""The `Config` dataclass and the one validation path every source goes through.

Sources, later ones win: the defaults below < the JSON or TOML file named by
`QACTUAR_CONFIG` < `QACTUAR_<KEY>` environment variables < command-line flags
or `run()` keyword arguments.  Strings (from the environment or the command
line) are converted by the field's type; every value, whatever its source, is
then checked by `Config.__post_init__`.  Problems raise `ConfigError`, whose
message is the single line the command line prints before exiting with 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from qactuar._build import NO_EXTENSIONS_ENV_VAR, PURE_PYTHON_ENV_VAR
from qactuar.errors import ConfigError
from qactuar.logs import default_log_config

CONFIG_ENV_VAR = "QACTUAR_CONFIG"
ENV_PREFIX = "QACTUAR_"
# QACTUAR_* variables that are not settings: the config file's name, and the
# build and pure-Python switches (qactuar/_build.py).
NOT_SETTINGS = {CONFIG_ENV_VAR, PURE_PYTHON_ENV_VAR, NO_EXTENSIONS_ENV_VAR}

# Keys of the original polling design; accepted so old config files still load.
OBSOLETE_KEYS = ("SELECT_SLEEP_TIME", "RECV_TIMEOUT")

MODEL_NAMES = ("async", "prefork", "postfork")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# The original project numbered its models; keep those numbers working.
MODEL_NUMBERS = {1: "postfork", 2: "async", 3: "prefork"}


@dataclass
class Config:
    """Every setting of the server.  Field docs live in the README's reference."""

    HOST: str = "localhost"
    PORT: int = 8000
    ADMIN: bool = False
    ADMIN_HOST: str = "localhost"
    ADMIN_PORT: int = 1986
    ADMIN_SOCKET: str = ""
    ADMIN_TOKEN: str = ""
    ADMIN_READ_TOKEN: str = ""
    ADMIN_RELEASES_DIR: str = ""
    HEALTH_PATH: str = ""
    READY_PATH: str = ""
    CHECK_PROCESS_INTERVAL: float = 1
    SELECT_SLEEP_TIME: float = 0.025
    RECV_TIMEOUT: float = 0.001
    RECV_BYTES: int = 65536
    MAX_PROCESSES: int = 500
    GATHER_PROC_STATS: bool = False
    REQUEST_TIMEOUT: float = 5
    APPS: dict[str, str] = field(default_factory=dict)
    LOGS: dict[str, Any] = field(default_factory=default_log_config)
    ASYNCRONOUS_MODEL: str = "async"
    SSL_CERT_PATH: str = ""
    SSL_KEY_PATH: str = ""
    SSL_KEY_PASSWORD: str = ""
    SSL_CA_PATH: str = ""
    SSL_CERT_REQS: str = "none"
    SSL_MIN_VERSION: str = "1.2"
    SSL_CIPHERS: str = ""
    SSL_HANDSHAKE_TIMEOUT: float = 10
    HTTP2: str = "auto"
    H2_MAX_CONCURRENT_STREAMS: int = 100
    KEEP_ALIVE_TIMEOUT: float = 5
    HEADER_TIMEOUT: float = 10
    SHUTDOWN_TIMEOUT: float = 30
    MAX_URL_SIZE: int = 8192
    MAX_HEADER_SIZE: int = 65536
    MAX_HEADER_COUNT: int = 100
    MAX_BODY_SIZE: int = 100 * 1024 * 1024
    LIMIT_CONCURRENCY: int = 0
    ACCESS_LOG: bool = True
    LIFESPAN: str = "auto"
    LOOP: str = "auto"
    ROOT_PATH: str = ""
    SERVER_HEADER: bool = True
    WS: str = "auto"
    WS_MAX_SIZE: int = 16 * 1024 * 1024
    WS_PING_INTERVAL: float = 20
    WS_PING_TIMEOUT: float = 20
    WS_CLOSE_TIMEOUT: float = 10
    WS_PER_MESSAGE_DEFLATE: bool = True
    WORKERS: int = 0
    WORKER_TIMEOUT: float = 30
    MAX_REQUESTS: int = 0
    MAX_REQUESTS_JITTER: int = 0
    BIND: str = ""
    UDS: str = ""
    UDS_MODE: str = ""
    FD: int = -1
    BACKLOG: int = 2048
    REUSE_PORT: bool = False
    BEANS: list[dict[str, Any]] = field(default_factory=list)
    STOP_WAIT_TIME: float = 10
    BLOCKED_LOOP_THRESHOLD: float = 0
    PROXY_HEADERS: bool = True
    FORWARDED_ALLOW_IPS: str = "127.0.0.1,::1,unix"
    PROXY_PROTOCOL: bool = False
    LOG_FORMAT: str = "text"
    LOG_LEVEL: str = ""
    LOG_CONFIG: str = ""
    SEND_TIMEOUT: float = 0
    GC_THRESHOLD: int = 7000
    # HTTP/3 and UDP apps (qactuar/quic, qactuar/udp; docs/http3-udp.md).
    QUIC_BIND: str = ""
    QUIC_RETRY: bool = True
    QUIC_QUEUE_SIZE: int = 4096
    UDP_BINDS: str = ""
    UDP_QUEUE_SIZE: int = 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            checked = _check(f.name, value)
            if checked is not value:
                setattr(self, f.name, checked)


# What each key accepts: (type, predicate, description of what is expected).
# The type is the Python type of the field; the predicate adds a range or a
# choice.  Keeping both in one table is what makes the error messages uniform.
def _non_negative(v: float) -> bool:
    return v >= 0


def _positive(v: float) -> bool:
    return v > 0


def _port(v: int) -> bool:
    return 0 <= v <= 65535


def _choice(*names: str) -> tuple[Any, str]:
    return (lambda v: v in names), "one of " + ", ".join(names)


_RULES: dict[str, tuple[type, Any, str]] = {
    "HOST": (str, bool, "a host name or address"),
    "PORT": (int, _port, "an integer from 0 to 65535"),
    "ADMIN": (bool, None, "true or false"),
    "ADMIN_HOST": (str, None, "a host name or address, or empty for no TCP admin listener"),
    "ADMIN_PORT": (int, _port, "an integer from 0 to 65535"),
    "ADMIN_SOCKET": (str, None, "a path for the admin Unix socket, or empty"),
    "ADMIN_TOKEN": (str, None, "a secret for Authorization: Bearer, or empty"),
    "ADMIN_READ_TOKEN": (str, None, "a read-only secret for Authorization: Bearer, or empty"),
    "ADMIN_RELEASES_DIR": (str, None, "a directory for apps cloned from git, or empty for "
                           "one in the temporary directory"),
    "HEALTH_PATH": (str, lambda v: v == "" or v.startswith("/"),
                    'empty or a path starting with "/" (a liveness probe on the main port)'),
    "READY_PATH": (str, lambda v: v == "" or v.startswith("/"),
                   'empty or a path starting with "/" (a readiness probe on the main port)'),
    "CHECK_PROCESS_INTERVAL": (float, _positive, "a number of seconds above 0"),
    "SELECT_SLEEP_TIME": (float, _non_negative, "a number of seconds (no effect)"),
    "RECV_TIMEOUT": (float, _non_negative, "a number of seconds (no effect)"),
    "RECV_BYTES": (int, _positive, "a number of bytes above 0"),
    "MAX_PROCESSES": (int, _positive, "an integer above 0"),
    "GATHER_PROC_STATS": (bool, None, "true or false"),
    "REQUEST_TIMEOUT": (float, _non_negative, "a number of seconds, 0 for none"),
    "APPS": (dict, None, 'an object of route prefix -> "module:attr"'),
    "LOGS": (dict, None, "a logging.config.dictConfig dictionary"),
    "ASYNCRONOUS_MODEL": (str, None, "async, prefork or postfork (or 1, 2, 3)"),
    "SSL_CERT_PATH": (str, None, "a path to a PEM certificate file"),
    "SSL_KEY_PATH": (str, None, "a path to a PEM key file"),
    "SSL_KEY_PASSWORD": (str, None, "the password of an encrypted key, or empty"),
    "SSL_CA_PATH": (str, None, "a path to PEM CA certificates for client certificates"),
    "SSL_CERT_REQS": (str, *_choice("none", "optional", "required")),
    "SSL_MIN_VERSION": (str, *_choice("1.2", "1.3")),
    "SSL_CIPHERS": (str, None, "an OpenSSL cipher list, or empty for OpenSSL's default"),
    "SSL_HANDSHAKE_TIMEOUT": (float, _positive, "a number of seconds above 0"),
    "HTTP2": (str, *_choice("auto", "on", "off", "only")),
    "H2_MAX_CONCURRENT_STREAMS": (int, _positive, "an integer above 0"),
    "KEEP_ALIVE_TIMEOUT": (float, _non_negative, "a number of seconds, 0 to disable keep-alive"),
    "HEADER_TIMEOUT": (float, _positive, "a number of seconds above 0"),
    "SHUTDOWN_TIMEOUT": (float, _non_negative, "a number of seconds"),
    "MAX_URL_SIZE": (int, _positive, "a number of bytes above 0"),
    "MAX_HEADER_SIZE": (int, _positive, "a number of bytes above 0"),
    "MAX_HEADER_COUNT": (int, _positive, "an integer above 0"),
    "MAX_BODY_SIZE": (int, _non_negative, "a number of bytes, 0 for no limit"),
    "LIMIT_CONCURRENCY": (int, _non_negative, "an integer, 0 for no limit"),
    "ACCESS_LOG": (bool, None, "true or false"),
    "LIFESPAN": (str, *_choice("auto", "on", "off")),
    "LOOP": (str, *_choice("auto", "asyncio", "uvloop")),
    "ROOT_PATH": (str, lambda v: v == "" or (v.startswith("/") and not v.endswith("/")),
                  'empty or a path starting with "/" without a trailing "/"'),
    "SERVER_HEADER": (bool, None, "true or false"),
    "WS": (str, *_choice("auto", "on", "off")),
    "WS_MAX_SIZE": (int, _positive, "a number of bytes above 0"),
    "WS_PING_INTERVAL": (float, _non_negative, "a number of seconds, 0 for no pings"),
    "WS_PING_TIMEOUT": (float, _non_negative, "a number of seconds, 0 for no timeout"),
    "WS_CLOSE_TIMEOUT": (float, _positive, "a number of seconds above 0"),
    "WS_PER_MESSAGE_DEFLATE": (bool, None, "true or false"),
    "WORKERS": (int, _non_negative, "an integer, 0 for one per CPU"),
    "WORKER_TIMEOUT": (float, _positive, "a number of seconds above 0"),
    "MAX_REQUESTS": (int, _non_negative, "an integer, 0 for no limit"),
    "MAX_REQUESTS_JITTER": (int, _non_negative, "an integer, 0 for none"),
    "BIND": (str, lambda v: all(_bind_ok(part) for part in split_binds(v)),
             "comma-separated addresses: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N"),
    "UDS": (str, None, "a path for a Unix socket, or empty"),
    "UDS_MODE": (str, lambda v: v == "" or octal_mode(v) is not None,
                 'an octal file mode such as "660", or empty for the umask\'s'),
    "FD": (int, lambda v: v >= -1, "a file descriptor number, or -1 for none"),
    "BACKLOG": (int, _positive, "an integer above 0"),
    "REUSE_PORT": (bool, None, "true or false"),
    "BEANS": (list, None, 'a list of bean objects such as {"core": "package.module.function"}'),
    "STOP_WAIT_TIME": (float, _non_negative,
                       "a number of seconds the beans get to stop before they are cancelled"),
    "BLOCKED_LOOP_THRESHOLD": (float, _non_negative,
                               "a number of seconds, 0 for no blocked-loop detector"),
    "PROXY_HEADERS": (bool, None, "true or false (Forwarded / X-Forwarded-* from trusted peers)"),
    "FORWARDED_ALLOW_IPS": (str, lambda v: _allow_list_ok(v),
                            "comma-separated addresses, CIDR ranges, * or unix"),
    "PROXY_PROTOCOL": (bool, None, "true or false (a PROXY v1/v2 header from trusted peers)"),
    "LOG_FORMAT": (str, *_choice("text", "json")),
    "LOG_LEVEL": (str, lambda v: v.lower() in ("", *LOG_LEVELS),
                  "empty (as LOGS says) or one of " + ", ".join(LOG_LEVELS)),
    "LOG_CONFIG": (str, None, "a JSON or TOML logging.config.dictConfig file (replaces LOGS), "
                              "or empty"),
    "SEND_TIMEOUT": (float, _non_negative, "a number of seconds a client may stop reading "
                                           "a response before it is closed, 0 for none"),
    "GC_THRESHOLD": (int, _non_negative, "a number of objects, 0 to leave the garbage "
                                         "collector's thresholds as they are"),
    "QUIC_BIND": (str, lambda v: v == "" or _udp_bind_ok(v),
                  "empty, or one HOST:PORT (or [IPv6]:PORT) for HTTP/3 over UDP"),
    "QUIC_RETRY": (bool, None, "true or false"),
    "QUIC_QUEUE_SIZE": (int, _positive, "a number of datagrams above 0"),
    "UDP_BINDS": (str, lambda v: all(_udp_bind_ok(part) for part in split_binds(v)),
                  "comma-separated HOST:PORT (or [IPv6]:PORT) addresses for the UDP app"),
    "UDP_QUEUE_SIZE": (int, _positive, "a number of datagrams above 0"),
}


def _allow_list_ok(text: str) -> bool:
    from qactuar.proxy_headers import parse_allow_list

    try:
        parse_allow_list(text)
    except ValueError:
        return False
    return True


def split_binds(text: str) -> list[str]:
    """The addresses of a BIND value, in order."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _bind_ok(part: str) -> bool:
    if part.startswith("unix:"):
        return len(part) > len("unix:")
    if part.startswith("fd://"):
        return part[len("fd://"):].isdigit()
    _host, sep, port = part.rpartition(":")
    return bool(sep) and port.isdigit() and 0 <= int(port) <= 65535


def _udp_bind_ok(part: str) -> bool:
    _host, sep, port = part.strip().rpartition(":")
    return bool(sep) and port.isdigit() and 0 <= int(port) <= 65535


def octal_mode(text: str) -> int | None:
    """An octal permission string ("660", "0o660") as a number, or None."""
    digits = text[2:] if text.lower().startswith("0o") else text
    if not digits or len(digits) > 4 or any(ch not in "01234567" for ch in digits):
        return None
    return int(digits, 8)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _fail(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"config key {key} = {value!r}: expected {expected}")


def _check(key: str, value: Any) -> Any:
    """Check one value against its rule; return it, normalised where needed."""
    kind, predicate, expected = _RULES[key]
    if key == "ASYNCRONOUS_MODEL":
        return _check_model(value)
    if kind is float:
        ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok_type = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok_type = isinstance(value, kind)
    if not ok_type or (predicate is not None and not predicate(value)):
        raise _fail(key, value, expected)
    # An empty list has nothing to check: the pod is then not imported at all.
    if key == "BEANS" and (value or not isinstance(value, list | tuple)):
        from qactuar.pod.config import check_beans  # the pod's own rules, one place

        check_beans(value)
    if key == "APPS":
        for route, target in value.items():
            if not isinstance(route, str) or not isinstance(target, str) or ":" not in target:
                raise _fail(key, value, expected)
    return value


def _check_model(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in MODEL_NUMBERS:
        return MODEL_NUMBERS[value]
    if isinstance(value, str):
        name = value.strip().lower()
        if name.isdigit() and int(name) in MODEL_NUMBERS:
            return MODEL_NUMBERS[int(name)]
        if name in MODEL_NAMES:
            return name
    raise _fail("ASYNCRONOUS_MODEL", value, _RULES["ASYNCRONOUS_MODEL"][2])


def obsolete_settings(config: Config) -> list[str]:
    """The obsolete keys this config sets, so the server can warn about them once."""
    return [key for key in OBSOLETE_KEYS if getattr(config, key) != _DEFAULTS[key]]


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


def field_type(key: str) -> type:
    return _RULES[key][0]


def expected_value(key: str) -> str:
    """What the key accepts, in words (for help texts and error messages)."""
    return _RULES[key][2]


def default_value(key: str) -> Any:
    return _DEFAULTS.get(key)


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(Config) if f.default is not MISSING
}


def coerce_string(key: str, text: str) -> Any:
    """Turn a string from the environment or command line into the key's type."""
    kind = field_type(key)
    expected = _RULES[key][2]
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is dict or kind is list:
            return _json_value(key, text, expected)
    except ValueError:
        raise _fail(key, text, expected) from None
    return text


def _json_value(key: str, text: str, expected: str) -> Any:
    import json  # only for a structured value: not on every start

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(key, text, f"JSON ({exc.msg}): {expected}") from None


def check_keys(mapping: Mapping[str, Any], source: str) -> None:
    """Reject unknown keys, naming the closest known one."""
    known = field_names()
    for key in mapping:
        if key not in known:
            import difflib  # only to name the closest key of a mistake

            close = difflib.get_close_matches(str(key).upper(), known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")


def read_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if file.suffix.lower() == ".toml":
            import tomllib  # only for a TOML file: not on every start

            data = tomllib.loads(text.decode("utf-8"))
        else:
            import json

            data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object of settings")
    check_keys(data, f"config file {path}")
    return data


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    known = set(field_names())
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX):]
        if key not in known:
            check_keys({key: text}, f"environment variable {name}")
        if key == "PORT" and text.startswith(("tcp://", "udp://")):
            # Kubernetes sets <SERVICE>_PORT=tcp://IP:PORT for each Service in the namespace.
            raise ConfigError(
                f"environment variable {name} = {text!r} is a Kubernetes service link (from "
                "a Service named \"qactuar\"), not a port: set enableServiceLinks: false in "
                "the pod spec, or QACTUAR_PORT to a number")
        values[key] = coerce_string(key, text)
    return values


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build a Config from the file, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    path = environ.get(CONFIG_ENV_VAR)
    if path:
        merged.update(read_config_file(path))
    merged.update(read_environment(environ))
    if overrides:
        check_keys(overrides, "arguments")
        merged.update(overrides)
    _workers_imply_prefork(merged)
    return Config(**merged)


def _workers_imply_prefork(merged: dict[str, Any]) -> None:
    """WORKERS set without a model means prefork (`qactuar app:app --workers 4` serves
    with four processes); with the async model named as well it is a mistake."""
    workers = merged.get("WORKERS")
    if not workers or isinstance(workers, bool) or not isinstance(workers, int):
        return
    if "ASYNCRONOUS_MODEL" not in merged:
        merged["ASYNCRONOUS_MODEL"] = "prefork"
    elif _check_model(merged["ASYNCRONOUS_MODEL"]) == "async" and workers > 1:
        raise ConfigError(f"config key WORKERS = {workers}: the async model serves in one "
                          "process; use --model prefork (or leave the model out) for workers")

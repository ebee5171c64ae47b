"""The settings of `qactuar pod run`: a Python config file of upper-case names, checked.

Reserved names: BEANS (a list of bean dicts), LOG_LEVEL, LOOP_TYPE (asyncio,
uvloop or auto), DEBUG, STOP_WAIT_TIME (seconds, None to wait for every bean)
and BLOCKED_LOOP_THRESHOLD (seconds, 0 for off).  Other upper-case names are
kept for the beans (`context.config.NAME`), unless one looks like a misspelt
reserved name: that is an error, as is any wrong value.  Every problem is a
`ConfigError` with one line.  Also the command line's bean form
`pkg.mod.func:k1=v1,k2=v2`.
"""

from __future__ import annotations

import ast
import difflib
import runpy
from dataclasses import dataclass, field
from typing import Any

from qactuar.config import ConfigError
from qactuar.pod.bean import check_bean_entry

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOOP_TYPES = ("asyncio", "uvloop", "auto")
RESERVED = ("BEANS", "LOG_LEVEL", "LOOP_TYPE", "DEBUG", "STOP_WAIT_TIME",
            "BLOCKED_LOOP_THRESHOLD")


@dataclass
class PodSettings:
    """Checked settings of one `qactuar pod run`; `extra` holds the file's other names."""

    BEANS: list[dict[str, Any]] = field(default_factory=list)
    LOG_LEVEL: str = "INFO"
    LOOP_TYPE: str = "asyncio"
    DEBUG: bool = False
    STOP_WAIT_TIME: float | None = None
    BLOCKED_LOOP_THRESHOLD: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_beans(self.BEANS)
        level = self.LOG_LEVEL.upper() if isinstance(self.LOG_LEVEL, str) else self.LOG_LEVEL
        if level not in LOG_LEVELS:
            raise _fail("LOG_LEVEL", self.LOG_LEVEL, "one of " + ", ".join(LOG_LEVELS)
                        + " (any case)")
        self.LOG_LEVEL = level
        if self.LOOP_TYPE not in LOOP_TYPES:
            raise _fail("LOOP_TYPE", self.LOOP_TYPE, "one of " + ", ".join(LOOP_TYPES))
        if not isinstance(self.DEBUG, bool):
            raise _fail("DEBUG", self.DEBUG, "True or False")
        if self.STOP_WAIT_TIME is not None and not _seconds(self.STOP_WAIT_TIME):
            raise _fail("STOP_WAIT_TIME", self.STOP_WAIT_TIME,
                        "a number of seconds, or None to wait for every bean")
        if not _seconds(self.BLOCKED_LOOP_THRESHOLD):
            raise _fail("BLOCKED_LOOP_THRESHOLD", self.BLOCKED_LOOP_THRESHOLD,
                        "a number of seconds, 0 for off")

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not fields: the config file's own names.
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"the pod config has no {name}")


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _fail(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"pod config key {key} = {value!r}: expected {expected}")


def check_beans(beans: Any) -> None:
    """The shape of a BEANS list (cores are imported later, when the pod is built)."""
    if not isinstance(beans, list | tuple):
        raise ConfigError(f"config key BEANS = {beans!r}: expected a list of bean objects "
                          "such as {'core': 'package.module.function'}")
    for index, entry in enumerate(beans):
        check_bean_entry(entry, index)


def settings_from(values: dict[str, Any], source: str) -> PodSettings:
    """Settings from upper-case names; a name close to a reserved one is refused."""
    reserved: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in values.items():
        if name in RESERVED:
            reserved[name] = value
            continue
        close = difflib.get_close_matches(name, RESERVED, n=1, cutoff=0.75)
        if close:
            raise ConfigError(f"unknown pod config key {name!r} in {source}; did you mean "
                              f"{close[0]}?")
        extra[name] = value
    return PodSettings(**reserved, extra=extra)


def read_pod_file(path: str) -> dict[str, Any]:
    """The public upper-case names a Python config file defines."""
    try:
        namespace = runpy.run_path(path, run_name="qactuar_pod_config")
    except FileNotFoundError:
        raise ConfigError(f"cannot read pod config file {path}: no such file") from None
    except SyntaxError as exc:
        raise ConfigError(f"pod config file {path} line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise ConfigError(f"pod config file {path} raised {type(exc).__name__}: "
                          f"{exc}") from None
    return {name: value for name, value in namespace.items()
            if name.isupper() and not name.startswith("_")}


def _split_arguments(text: str) -> list[str]:
    """Split `k1=v1,k2=v2` on the commas between arguments: not on one escaped with a
    backslash, nor inside a quoted string or brackets (`xs=[1,2]` and `s="a,b"` are one
    value each; the apostrophe of `s=it's` starts no string)."""
    parts, current, depth, quote = [], "", 0, ""
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            current += char + escaped if quote else escaped  # a literal keeps its escapes
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and current.rstrip()[-1:] in ("=", "(", "[", "{", ",", ":"):
            quote = char  # where a Python literal's string can start
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    if quote or depth:
        raise ValueError(f"{current!r} has an unclosed {'quote' if quote else 'bracket'}")
    parts.append(current)
    return parts


def _value(text: str) -> Any:
    """A keyword value from the command line: a Python literal if it is one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_bean_argument(argument: str) -> dict[str, Any]:
    """`pkg.mod.func:k1=v1,k2=v2` -> {"core": "pkg.mod.func", "k1": v1, "k2": v2}."""
    core, _, arguments = argument.partition(":")
    entry: dict[str, Any] = {"core": core}
    if not core:
        raise ConfigError(f"bean {argument!r}: expected package.module.function[:k1=v1,...]")
    try:
        pairs = _split_arguments(arguments) if arguments else []
    except ValueError as exc:
        raise ConfigError(f"bean {argument!r}: {exc}") from None
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or key == "core":
            raise ConfigError(f"bean {argument!r}: {pair!r} is not key=value")
        if key in entry:
            raise ConfigError(f"bean {argument!r}: {key} is given twice")
        entry[key] = _value(value)
    return entry

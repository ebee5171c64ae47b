"""`--env-file`: environment variables from a file of KEY=VALUE lines (the .env format).

Blank lines and `#` comments are skipped, an `export ` prefix is allowed, a
value may be quoted ('...' taken as is, "..." with \\n and \\" escapes).
Variables already in the environment win, as with python-dotenv, so an
operator's explicit setting is never overridden by a file.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping

from qactuar.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_env_file(text: str, path: str = "the env file") -> dict[str, str]:
    """The variables of an env file's text; ConfigError names a malformed line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise ConfigError(f"--env-file {path} line {number}: expected NAME=VALUE")
        values[name] = _value(value.strip(), path, number)
    return values


def _value(value: str, path: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        while quote == '"' and end > 0 and value[end - 1] == "\\":
            end = value.find(quote, end + 1)
        if end < 0:
            raise ConfigError(f"--env-file {path} line {number}: unterminated quote")
        inner = value[1:end]
        if quote == '"':
            inner = inner.replace("\\n", "\n").replace('\\"', '"')
        return inner
    return value.split(" #", 1)[0].rstrip()  # an unquoted value ends at a comment


def load_env_file(path: str, environ: MutableMapping[str, str]) -> None:
    """Add the file's variables to `environ` (those not already set)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"--env-file {path}: cannot read it: {exc.strerror}") from None
    for name, value in parse_env_file(text, path).items():
        environ.setdefault(name, value)

"""`qactuar pod run`: run beans from a Python config file and/or bean paths on the line.

    qactuar pod run -c config.py
    qactuar pod run pkg.mod.func:k1=v1,k2=v2 [more ...] [--log-level ..] [--loop ..]

Options override the file's reserved names; bean arguments are added to its
BEANS.  Configuration problems print one line and exit with status 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from qactuar.asgi.loader import add_app_dir
from qactuar.config import ConfigError
from qactuar.pod.config import (
    LOG_LEVELS,
    LOOP_TYPES,
    parse_bean_argument,
    read_pod_file,
    settings_from,
)


def _seconds(option: str, text: str, expected: str, none_ok: bool = False) -> float | None:
    """An option's seconds (None for 'none' where allowed); ConfigError (one line) if not."""
    if none_ok and text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected {expected}") from None


@click.group(name="pod", context_settings={"help_option_names": ["-h", "--help"]})
def pod_command() -> None:
    """Run background coroutines ("beans") in one event loop."""


@pod_command.command("run")
@click.option("--app-dir", default=".", show_default=True,
              help="Directory to import the beans from (put first on sys.path).")
@click.option("-c", "--config", "--config-file", "config_file", metavar="FILE",
              help="Python config file of upper-case names (BEANS, LOG_LEVEL, ...).")
@click.option("-l", "--log-level", metavar="LEVEL",
              help="LOG_LEVEL: " + ", ".join(LOG_LEVELS) + " (default INFO).")
@click.option("--loop", "--loop-type", "loop_type", metavar="TYPE",
              help="LOOP_TYPE: " + ", ".join(LOOP_TYPES) + " (default asyncio).")
@click.option("--debug/--no-debug", default=None, help="DEBUG: asyncio debug mode, debug logs.")
@click.option("--stop-wait-time", metavar="SECONDS",
              help="STOP_WAIT_TIME: how long a stop waits before cancelling beans; "
                   "'none' waits for every bean (the default).")
@click.option("--blocked-loop-threshold", metavar="SECONDS",
              help="BLOCKED_LOOP_THRESHOLD: log the stack when the loop blocks this long "
                   "(0, the default, is off).")
@click.argument("beans", nargs=-1, metavar="[BEAN:K=V,...]...")
def run_command(app_dir: str, config_file: str | None, log_level: str | None,
                loop_type: str | None, debug: bool | None, stop_wait_time: str | None,
                blocked_loop_threshold: str | None, beans: tuple[str, ...]) -> None:
    """Run the beans of a config file and/or the BEAN arguments until they finish or
    SIGINT/SIGTERM stops them."""
    from qactuar.pod.runner import run_pod

    # The installed `qactuar` script, unlike `python -m`, does not put the
    # current directory on sys.path: a bean next to its config must import.
    add_app_dir(app_dir)

    try:
        values: dict[str, Any] = read_pod_file(config_file) if config_file else {}
        source = f"pod config file {config_file}" if config_file else "the command line"
        extra_beans = [parse_bean_argument(argument) for argument in beans]
        if extra_beans:
            values["BEANS"] = [*values.get("BEANS", []), *extra_beans]
        options = {"LOG_LEVEL": log_level, "LOOP_TYPE": loop_type, "DEBUG": debug}
        values.update({key: value for key, value in options.items() if value is not None})
        if stop_wait_time is not None:
            values["STOP_WAIT_TIME"] = _seconds("--stop-wait-time", stop_wait_time,
                                                "a number of seconds or 'none'", none_ok=True)
        if blocked_loop_threshold is not None:
            values["BLOCKED_LOOP_THRESHOLD"] = _seconds(
                "--blocked-loop-threshold", blocked_loop_threshold,
                "a number of seconds, 0 for off")
        settings = settings_from(values, source)
        status = run_pod(settings)
    except ConfigError as exc:
        click.echo(f"qactuar pod: error: {exc}", err=True)
        sys.exit(2)
    sys.exit(status)

"""The `qactuar` command line: flags become settings, then `run()` serves.

Every Config key with a scalar value gets a flag (`KEEP_ALIVE_TIMEOUT` ->
`--keep-alive-timeout`), so the command line never falls behind the Config.
Flag values go through the same conversion and validation as the environment.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from qactuar import __version__
from qactuar._build import describe_build
from qactuar.asgi.loader import add_app_dir, call_factory
from qactuar.cli_help import grouped_command
from qactuar.config import (
    CONFIG_ENV_VAR,
    OBSOLETE_KEYS,
    ConfigError,
    coerce_string,
    default_value,
    expected_value,
    field_names,
    field_type,
    load_config,
)
from qactuar.env_file import load_env_file
from qactuar.server import run

# Keys without a flag: structured values belong in the config file.
NO_FLAG = {"APPS", "LOGS", "BEANS", *OBSOLETE_KEYS}
ALIASES = {"ASYNCRONOUS_MODEL": ["--model"], "WORKERS": ["-w"], "BIND": ["-b"]}
# Flags that may be given more than once; their values join with commas.
REPEATABLE = {"BIND"}
# Settings of the admin plane: given without ADMIN they would do nothing, so they are refused.
ADMIN_KEYS = ("ADMIN_HOST", "ADMIN_PORT", "ADMIN_SOCKET", "ADMIN_TOKEN", "ADMIN_READ_TOKEN",
              "ADMIN_RELEASES_DIR")


def _show_version(ctx: click.Context, value: bool) -> None:
    """`--version`: the build is described only when asked, as that imports every
    compiled module (HTTP/2, the load tool's engines...), which serving may not need."""
    if value and not ctx.resilient_parsing:
        click.echo(f"qactuar {__version__} ({describe_build()})")
        ctx.exit()


def flag_name(key: str) -> str:
    return "--" + key.lower().replace("_", "-")


def _setting_options(command: Any) -> Any:
    for key in reversed(field_names()):
        if key in NO_FLAG:
            continue
        text = f"{key}: {expected_value(key)} (default {default_value(key)!r})."
        if field_type(key) is bool:
            name = flag_name(key)
            option = click.option(f"{name}/--no-{name[2:]}", key.lower(), default=None,
                                  help=text)
        elif key in REPEATABLE:
            option = click.option(flag_name(key), *ALIASES.get(key, []), key.lower(),
                                  metavar="VALUE", multiple=True,
                                  help=text + " Repeatable.")
        else:
            option = click.option(flag_name(key), *ALIASES.get(key, []), key.lower(),
                                  metavar="VALUE", help=text)
        command = option(command)
    return command


@grouped_command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app", required=False)
@click.option("--app-dir", default=".", show_default=True,
              help="Directory to import the app from (put first on sys.path).")
@click.option("--config", "config_file", metavar="FILE",
              help=f"JSON or TOML settings file (instead of ${CONFIG_ENV_VAR}).")
@click.option("--env-file", metavar="FILE",
              help="KEY=VALUE lines added to the environment first (QACTUAR_* settings and "
                   "the app's own variables; variables already set win).")
@click.option("--factory", is_flag=True,
              help="APP is a function that returns the app: call it (without arguments).")
@click.option("--reload", "reload", is_flag=True,
              help="Development: restart the server when a watched file changes "
                   "(needs watchfiles: pip install 'qactuar[reload]').")
@click.option("--reload-dir", "reload_dir", multiple=True, metavar="DIR",
              help="A directory to watch (repeatable; default: the current directory).")
@click.option("--reload-include", "reload_include", multiple=True, metavar="GLOB",
              help='File names to watch (repeatable; default "*.py").')
@click.option("--reload-exclude", "reload_exclude", multiple=True, metavar="GLOB",
              help='File names to ignore (repeatable; default ".*", "*~", "__pycache__").')
@_setting_options
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, param, value: _show_version(ctx, value),
              help="Show the version and exit.")
def command(app: str | None, app_dir: str, config_file: str | None, env_file: str | None,
            factory: bool, reload: bool, reload_dir: tuple[str, ...],
            reload_include: tuple[str, ...], reload_exclude: tuple[str, ...],
            **flags: Any) -> None:
    """Serve the ASGI app APP ("module:attribute").

    Without APP, the apps in the APPS setting are served; without those, a
    built-in welcome page.
    """
    add_app_dir(app_dir)
    overrides: dict[str, Any] = {}
    try:
        if env_file:
            load_env_file(env_file, os.environ)
        for name, value in flags.items():
            if value is None or value == ():
                continue
            key = name.upper()
            if isinstance(value, tuple):  # a repeatable flag
                value = ",".join(value)
            overrides[key] = value if isinstance(value, bool) else coerce_string(key, value)
        environ = dict(os.environ)
        if config_file:
            environ[CONFIG_ENV_VAR] = config_file
        config = load_config(overrides, environ)
        _refuse_admin_flags_without_admin(overrides, config)
        if reload or reload_dir or reload_include or reload_exclude:
            from qactuar.log_format import logging_setup
            from qactuar.reloader import run_with_reload

            sys.exit(run_with_reload(sys.argv[1:], reload_dir, reload_include,
                                     reload_exclude, logging_setup(config)))
        served: Any = app
        if factory:
            if not app:
                raise ConfigError("--factory needs APP, the \"module:function\" to call")
            served = call_factory(app)
    except ConfigError as exc:
        click.echo(f"qactuar: error: {exc}", err=True)
        sys.exit(2)
    run(app=served, conf=config)


def _refuse_admin_flags_without_admin(overrides: dict[str, Any], config: Any) -> None:
    given = [key for key in ADMIN_KEYS if key in overrides]
    if given and not config.ADMIN:
        raise ConfigError(f"{flag_name(given[0])} configures the admin plane, which is off: "
                          "add --admin to start it")


def main() -> None:
    # `qactuar pod ...` (background coroutines), `qactuar ctl ...` (the admin plane's
    # client) and `qactuar load ...` (the load generator) are commands of their own;
    # dispatching here keeps
    # `qactuar module:app` a plain command with every flag as before.
    if sys.argv[1:2] == ["pod"]:
        from qactuar.pod.cli import pod_command

        pod_command(args=sys.argv[2:], prog_name="qactuar pod")
        return
    if sys.argv[1:2] == ["ctl"]:
        from qactuar.admin.ctl import ctl_command

        ctl_command(args=sys.argv[2:], prog_name="qactuar ctl")
        return
    if sys.argv[1:2] == ["load"]:
        from qactuar.load.cli import main as load_main

        load_main(sys.argv[2:])
        return
    command(prog_name="qactuar")

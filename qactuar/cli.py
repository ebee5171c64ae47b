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
from qactuar.asgi.loader import add_app_dir
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
from qactuar.server import run

# Keys without a flag: structured values belong in the config file.
NO_FLAG = {"APPS", "LOGS", "BEANS", *OBSOLETE_KEYS}
ALIASES = {"ASYNCRONOUS_MODEL": ["--model"]}


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
        else:
            option = click.option(flag_name(key), *ALIASES.get(key, []), key.lower(),
                                  metavar="VALUE", help=text)
        command = option(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app", required=False)
@click.option("--app-dir", default=".", show_default=True,
              help="Directory to import the app from (put first on sys.path).")
@click.option("--config", "config_file", metavar="FILE",
              help=f"JSON or TOML settings file (instead of ${CONFIG_ENV_VAR}).")
@_setting_options
@click.version_option(__version__, "--version", prog_name="qactuar",
                      message=f"%(prog)s %(version)s ({describe_build()})")
def command(app: str | None, app_dir: str, config_file: str | None, **flags: Any) -> None:
    """Serve the ASGI app APP ("module:attribute").

    Without APP, the apps in the APPS setting are served; without those, a
    built-in welcome page.
    """
    add_app_dir(app_dir)
    overrides: dict[str, Any] = {}
    try:
        for name, value in flags.items():
            if value is None:
                continue
            key = name.upper()
            overrides[key] = value if isinstance(value, bool) else coerce_string(key, value)
        environ = dict(os.environ)
        if config_file:
            environ[CONFIG_ENV_VAR] = config_file
        config = load_config(overrides, environ)
    except ConfigError as exc:
        click.echo(f"qactuar: error: {exc}", err=True)
        sys.exit(2)
    run(app=app, conf=config)


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

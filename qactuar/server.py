"""`run()`: turn settings and an app into a serving process of the chosen model."""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any

# (gc_tuning notes the collector's thresholds before any app is imported)
from qactuar import gc_tuning  # noqa: F401
from qactuar.asgi.lifespan import Lifespan
from qactuar.asgi.loader import import_app
from qactuar.asgi.router import Mount, normalise_prefix
from qactuar.asgi.welcome import welcome_app
from qactuar.config import Config, ConfigError, load_config, obsolete_settings
from qactuar.log_format import apply_log_level, logging_setup
from qactuar.logs import configure_logging, server_logger


def run(app: Any = None, host: str | None = None, port: int | None = None,
        conf: Config | None = None) -> None:
    """Serve `app` (an ASGI callable or "module:attr") until SIGINT or SIGTERM.

    Without `conf` the settings come from the `QACTUAR_CONFIG` file and
    `QACTUAR_*` environment variables; `host` and `port` override either.
    Configuration problems print one line and exit with status 2.
    """
    try:
        status = _serve(app, host, port, conf)
    except ConfigError as exc:
        print(f"qactuar: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if status:
        sys.exit(status)


def _serve(app: Any, host: str | None, port: int | None, conf: Config | None) -> int:
    config = conf if conf is not None else load_config()
    overrides = {key: value for key, value in (("HOST", host), ("PORT", port))
                 if value is not None}
    if overrides:
        config = dataclasses.replace(config, **overrides)
    configure_logging(logging_setup(config))
    apply_log_level(config.LOG_LEVEL)
    for key in obsolete_settings(config):
        server_logger.warning("config key %s has no effect (it belonged to the original "
                              "polling design)", key)
    if (config.ASYNCRONOUS_MODEL != "async"
            and threading.current_thread() is not threading.main_thread()):
        raise ConfigError(f"the {config.ASYNCRONOUS_MODEL} model runs its processes with "
                          "signals: call run() from the main thread")
    if config.PROXY_PROTOCOL and config.SSL_CERT_PATH:
        raise ConfigError("config key PROXY_PROTOCOL = True: not with TLS (SSL_CERT_PATH); "
                          "terminate TLS at the proxy, which sends the PROXY header")
    mounts = build_mounts(config, app)
    if config.BEANS:
        from qactuar.pod.serving import load_server_beans

        load_server_beans(config)  # a bad bean: one line, exit 2, before binding
    if config.ASYNCRONOUS_MODEL == "prefork":
        from qactuar.models.prefork import run_prefork_model

        return run_prefork_model(config, mounts, AppImporter(config, app))
    if config.ASYNCRONOUS_MODEL == "postfork":
        from qactuar.models.postfork import run_postfork_model

        return run_postfork_model(config, mounts)
    from qactuar.models.aio import run_async_model

    return run_async_model(config, mounts)


class AppImporter:
    """Imports the apps afresh for a prefork SIGHUP (code_reload.py): returns the new
    mounts and a description of the code loaded; ConfigError if it does not import."""

    def __init__(self, config: Config, app: Any) -> None:
        self.config = config
        self.app = app
        self.targets = [target for target in (app, *config.APPS.values())
                        if isinstance(target, str)]

    def __call__(self) -> tuple[list[Mount], str]:
        from qactuar.code_reload import describe_code, forget_app_modules

        forget_app_modules()
        mounts = build_mounts(self.config, self.app)
        return mounts, describe_code(self.targets)

    def describe(self) -> str:
        from qactuar.code_reload import describe_code

        return describe_code(self.targets)


def build_mounts(config: Config, app: Any) -> list[Mount]:
    """The apps to serve: `app` at the root plus every APPS entry, or the welcome page."""
    targets: dict[str, Any] = {}
    if app is not None:
        targets[""] = app
    for route, target in config.APPS.items():
        prefix = normalise_prefix(route)
        if prefix in targets:
            raise ConfigError(f"config key APPS: two apps are mounted at {prefix or '/'!r}")
        targets[prefix] = target
    if not targets:
        server_logger.info("No app given: serving the built-in welcome page")
        targets[""] = welcome_app
    for key, kind in (("HEALTH_PATH", "health"), ("READY_PATH", "ready")):
        path = getattr(config, key)
        if path:  # a probe for Kubernetes on the main port (qactuar/admin/probes.py)
            from qactuar.admin.probes import probe_app

            if normalise_prefix(path) in targets:
                raise ConfigError(f"config key {key} = {path!r}: an app is mounted there")
            targets[normalise_prefix(path)] = probe_app(kind)
    mounts = []
    for prefix, target in targets.items():
        loaded = import_app(target) if isinstance(target, str) else target
        label = target if isinstance(target, str) else getattr(target, "__name__", "app")
        if target is welcome_app:
            label = "the welcome page"
        mounts.append(Mount(prefix, loaded, Lifespan(loaded, config.LIFESPAN, repr(label))))
    return mounts

"""Which settings may change while the server runs, and how (PATCH /config).

Every change goes through the same validation as a config file or the
environment (`qactuar.config`): an unknown key names the closest one, a bad value
gets the same one-line message.  Then each key is one of: live (applied in every
serving process at once), new workers (a graceful reload applies it), or refused
with the reason (it needs a new bind or is read once at start).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from qactuar.admin.app import HTTPError
from qactuar.admin.channel import LIVE_SERVING_SETTINGS
from qactuar.config import Config, ConfigError, check_keys

LIVE = {*LIVE_SERVING_SETTINGS, "GATHER_PROC_STATS", "CHECK_PROCESS_INTERVAL", "SHUTDOWN_TIMEOUT"}

_BIND = "it needs a new bind: restart the server with the new value"
REFUSED = {
    **{key: _BIND for key in ("HOST", "PORT", "BIND", "UDS", "UDS_MODE", "FD", "REUSE_PORT",
                              "BACKLOG")},
    **{key: "TLS settings are read when the sockets are bound: restart the server"
       for key in ("SSL_CERT_PATH", "SSL_KEY_PATH", "SSL_KEY_PASSWORD", "SSL_CA_PATH",
                   "SSL_CERT_REQS", "SSL_MIN_VERSION", "SSL_CIPHERS")},
    **{key: "the admin plane's own settings are read at start: restart the server"
       for key in ("ADMIN", "ADMIN_HOST", "ADMIN_PORT", "ADMIN_SOCKET", "ADMIN_TOKEN",
                   "ADMIN_READ_TOKEN", "ADMIN_RELEASES_DIR", "HEALTH_PATH",
                   "READY_PATH")},
    "ASYNCRONOUS_MODEL": "the process model is chosen at start: restart the server",
    "MAX_PROCESSES": "the postfork parent sizes its process table at start: restart the server",
    "APPS": "apps are mounted with the /apps endpoint, not through the config",
    "LIFESPAN": "read when the apps are loaded: restart the server",
    "LOGS": "logging is configured at start: restart the server",
    "LOOP": "the event loop is chosen at start: restart the server",
}


@dataclasses.dataclass
class ConfigChange:
    new: Config
    live: dict[str, Any]  # applied at once in every serving process
    needs_workers: dict[str, Any]  # applied by new workers (graceful reload)


def plan_change(config: Config, changes: dict[str, Any]) -> ConfigChange:
    """Validate `changes` against `config`; raise HTTPError 400/409 naming the problem."""
    if not changes:
        raise HTTPError(400, "no settings given: send an object such as {\"ACCESS_LOG\": false}")
    try:
        check_keys(changes, "PATCH /config")
        new = dataclasses.replace(config, **changes)
    except (ConfigError, TypeError) as exc:
        raise HTTPError(400, str(exc)) from None
    changed = {key: getattr(new, key) for key in changes
               if getattr(new, key) != getattr(config, key)}
    for key in changed:
        if key in REFUSED:
            raise HTTPError(409, f"config key {key} cannot change while the server runs: "
                                 f"{REFUSED[key]}")
    live = {key: value for key, value in changed.items() if key in LIVE}
    rest = {key: value for key, value in changed.items() if key not in LIVE}
    return ConfigChange(new, live, rest)

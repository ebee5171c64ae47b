"""`qactuar --help` grouped by topic, with example command lines.

`GroupedCommand` is a click command whose options are listed under headings
(binding, TLS, processes, timeouts and limits, logging, protocols, proxies,
the admin plane, development), each option placed by `topic_of` from its
setting's name, so a new setting lands under a heading without an edit here.
"""

from __future__ import annotations

from typing import Any

import click

TOPICS = ("Application", "Binding", "TLS", "Processes", "Timeouts and limits", "Logging",
          "Protocols", "Proxies", "Admin plane and probes", "Development", "Other")

# Exact names first, then prefixes; anything else is "Other".
_EXACT = {
    "app_dir": "Application", "config_file": "Application", "env_file": "Application",
    "factory": "Application", "lifespan": "Application", "root_path": "Application",
    "beans_file": "Application", "stop_wait_time": "Application",
    "host": "Binding", "port": "Binding", "bind": "Binding", "uds": "Binding",
    "uds_mode": "Binding", "fd": "Binding", "backlog": "Binding", "reuse_port": "Binding",
    "asyncronous_model": "Processes", "workers": "Processes", "loop": "Processes",
    "max_processes": "Processes", "check_process_interval": "Processes",
    "gather_proc_stats": "Processes", "max_requests": "Processes", "gc_threshold": "Processes",
    "max_requests_jitter": "Processes", "worker_timeout": "Processes",
    "access_log": "Logging", "server_header": "Protocols", "recv_bytes": "Timeouts and limits",
    "limit_concurrency": "Timeouts and limits",
    "blocked_loop_threshold": "Timeouts and limits",
    "forwarded_allow_ips": "Proxies", "health_path": "Admin plane and probes",
    "ready_path": "Admin plane and probes",
    "reload": "Development", "reload_dir": "Development", "reload_include": "Development",
    "reload_exclude": "Development",
}
_PREFIXES = (("ssl_", "TLS"), ("log_", "Logging"), ("http2", "Protocols"),
             ("h2_", "Protocols"), ("http3", "Protocols"), ("h3_", "Protocols"),
             ("quic", "Protocols"), ("ws", "Protocols"), ("proxy_", "Proxies"),
             ("admin", "Admin plane and probes"), ("max_", "Timeouts and limits"))

EXAMPLES = """\b
Examples:
  qactuar main:app                              serve on localhost:8000
  qactuar main:app -b 0.0.0.0:8000 -w 4         four prefork workers
  qactuar main:app -b unix:/run/app.sock --forwarded-allow-ips unix
  qactuar main:app --ssl-cert-path cert.pem --ssl-key-path key.pem
  qactuar main:app --reload --reload-dir src    restart on every edit
  qactuar main:app --log-format json --log-level warning
"""


def topic_of(name: str) -> str:
    """The help heading of an option (by its parameter name, e.g. "keep_alive_timeout")."""
    if name in _EXACT:
        return _EXACT[name]
    for prefix, topic in _PREFIXES:
        if name.startswith(prefix):
            return topic
    if name.endswith("_timeout"):
        return "Timeouts and limits"
    return "Other"


class GroupedCommand(click.Command):
    """A click command whose --help lists its options under topic headings."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {topic: [] for topic in TOPICS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            groups[topic_of(param.name or "")].append(record)
        for topic in TOPICS:
            if groups[topic]:
                with formatter.section(topic):
                    formatter.write_dl(groups[topic])

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(EXAMPLES)


def grouped_command(**settings: Any) -> Any:
    return click.command(cls=GroupedCommand, **settings)

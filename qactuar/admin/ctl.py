"""`qactuar ctl`: the command-line client of the admin plane's API.

It reads the same settings as the server to find it (`QACTUAR_ADMIN_HOST`,
`QACTUAR_ADMIN_PORT`, `QACTUAR_ADMIN_SOCKET`, `QACTUAR_ADMIN_TOKEN`, or the flags),
speaks HTTP/1.1 with the standard library over TCP or the Unix socket, and prints
JSON (or, for `status` and `top`, a table).  An answer other than 2xx prints the
server's reason on stderr and exits with 1; a server that cannot be reached, 1 too.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from typing import Any

import click

from qactuar.config import ConfigError, check_keys, coerce_string


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class AdminClient:
    """One admin plane, asked over TCP or its Unix socket."""

    def __init__(self, host: str, port: int, unix: str, token: str, timeout: float) -> None:
        self.host, self.port, self.unix, self.token = host, port, unix, token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        connection: http.client.HTTPConnection
        if self.unix:
            connection = UnixHTTPConnection(self.unix, self.timeout)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"host": "localhost"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        where = f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as exc:
            _fail(f"cannot reach the admin plane at {where}: {exc.strerror or exc}")
        finally:
            connection.close()
        text = payload.decode("utf-8", "replace")
        if not 200 <= response.status < 300:
            try:
                reason = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                reason = text.strip()
            _fail(f"{response.status} {reason}")
        if response.getheader("content-type", "").startswith("application/json"):
            return json.loads(text)
        return text


def _fail(message: str) -> None:
    click.echo(f"qactuar ctl: error: {message}", err=True)
    sys.exit(1)


def _print(value: Any) -> None:
    text = isinstance(value, str)  # /metrics ends with its own newline
    click.echo(value if text else json.dumps(value, indent=1), nl=not text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=lambda: os.environ.get("QACTUAR_ADMIN_HOST", "localhost"),
              show_default="$QACTUAR_ADMIN_HOST or localhost", help="Admin plane address.")
@click.option("--port", type=int, default=lambda: int(os.environ.get("QACTUAR_ADMIN_PORT", 1986)),
              show_default="$QACTUAR_ADMIN_PORT or 1986", help="Admin plane port.")
@click.option("--socket", "unix", default=lambda: os.environ.get("QACTUAR_ADMIN_SOCKET", ""),
              help="The admin Unix socket (instead of host and port).")
@click.option("--token", default=lambda: os.environ.get("QACTUAR_ADMIN_TOKEN", ""),
              help="Bearer token (default $QACTUAR_ADMIN_TOKEN).")
@click.option("--timeout", type=float, default=120, show_default=True,
              help="Seconds to wait for an answer (a reload waits for new workers).")
@click.pass_context
def ctl_command(context: click.Context, host: str, port: int, unix: str, token: str,
                timeout: float) -> None:
    """Control a running qactuar server through its admin plane."""
    context.obj = AdminClient(host, port, unix, token, timeout)


@ctl_command.command()
@click.option("--json", "as_json", is_flag=True, help="The whole answer as JSON.")
@click.pass_obj
def status(client: AdminClient, as_json: bool) -> None:
    """The server and every process (GET /status)."""
    answer = client.request("GET", "/status")
    if as_json:
        _print(answer)
        return
    click.echo(_status_table(answer))


def _status_table(answer: dict[str, Any], rates: dict[int, float] | None = None) -> str:
    server, totals = answer["server"], answer["totals"]
    latency = answer["latency"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"<{value * 1000:g}ms"

    lines = [f"qactuar {server['version']}, {server['model']} model, up {server['uptime']:.0f}s, "
             f"{', '.join(server['binds'])}",
             f"requests {totals['requests']}, connections {totals['connections']}, in flight "
             f"{totals['in_flight']}, restarts {totals['restarts']}; latency p50 "
             f"{ms(latency['p50'])} p90 {ms(latency['p90'])} p99 {ms(latency['p99'])}",
             ""]
    header = f"{'PID':>8} {'ROLE':<10} {'UPTIME':>8} {'REQUESTS':>9} {'REQ/S':>7} {'CONNS':>6} " \
             f"{'INFLIGHT':>8} {'RSS MB':>7} {'CPU %':>6}"
    lines.append(header)
    for process in answer["processes"]:
        def cell(key: str, process: dict[str, Any] = process) -> str:
            value = process.get(key)
            return "-" if value is None else str(value)
        rss = process.get("rss_bytes")
        rate = (rates or {}).get(process["pid"])
        lines.append(f"{process['pid']:>8} {process['role']:<10} "
                     f"{float(process.get('uptime') or 0):>8.0f} {cell('requests'):>9} "
                     f"{'-' if rate is None else f'{rate:.0f}':>7} {cell('connections'):>6} "
                     f"{cell('in_flight'):>8} "
                     f"{'-' if rss is None else f'{rss / 1e6:.1f}':>7} {cell('cpu_percent'):>6}")
    return "\n".join(lines)


@ctl_command.command()
@click.option("--interval", type=float, default=1.0, show_default=True)
@click.option("--iterations", type=int, default=0, help="Stop after this many (0: until Ctrl-C).")
@click.pass_obj
def top(client: AdminClient, interval: float, iterations: int) -> None:
    """A live view of the processes, refreshed every INTERVAL seconds."""
    before: dict[int, tuple[float, int]] = {}
    shown = 0
    try:
        while True:
            answer = client.request("GET", "/status")
            now = time.monotonic()
            rates = {}
            for process in answer["processes"]:
                if process.get("requests") is None:
                    continue
                earlier = before.get(process["pid"])
                if earlier is not None and now > earlier[0]:
                    rates[process["pid"]] = (process["requests"] - earlier[1]) / (now - earlier[0])
                before[process["pid"]] = (now, process["requests"])
            clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
            click.echo(clear + _status_table(answer, rates))
            shown += 1
            if iterations and shown >= iterations:
                return
            click.echo("")
            time.sleep(interval)
    except KeyboardInterrupt:
        return


@ctl_command.command()
@click.pass_obj
def reload(client: AdminClient) -> None:
    """Start new workers, then stop the old ones; rolls back if they fail (POST /reload)."""
    _print(client.request("POST", "/reload"))


@ctl_command.command(context_settings={"ignore_unknown_options": True})
@click.argument("change")
@click.pass_obj
def workers(client: AdminClient, change: str) -> None:
    """Add or remove workers: +1, -1, or a count such as 4 (POST /workers)."""
    try:
        number = int(change)
    except ValueError:
        _fail(f"workers takes +N, -N or N, not {change!r}")
    body = {"delta": number} if change[:1] in "+-" else {"count": number}
    _print(client.request("POST", "/workers", body))


@ctl_command.group()
def config() -> None:
    """Read or change the live configuration (GET/PATCH /config)."""


@config.command("get")
@click.argument("key", required=False)
@click.pass_obj
def config_get(client: AdminClient, key: str | None) -> None:
    """Every setting, or one."""
    answer = client.request("GET", "/config")
    if key is None:
        _print(answer)
    elif key.upper() in answer:
        _print(answer[key.upper()])
    else:
        _fail(f"no setting {key!r}")


@config.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_obj
def config_set(client: AdminClient, key: str, value: str) -> None:
    """Set KEY to VALUE, converted as the environment's QACTUAR_<KEY> would be."""
    key = key.upper()
    try:
        check_keys({key: value}, "qactuar ctl config set")
        typed = coerce_string(key, value)
    except ConfigError as exc:
        click.echo(f"qactuar ctl: error: {exc}", err=True)
        sys.exit(2)
    _print(client.request("PATCH", "/config", {key: typed}))


@ctl_command.command()
@click.pass_obj
def metrics(client: AdminClient) -> None:
    """The Prometheus metrics (GET /metrics)."""
    _print(client.request("GET", "/metrics"))


@ctl_command.command()
@click.option("--pid", type=int, help="The process (default: the one serving the API).")
@click.pass_obj
def tasks(client: AdminClient, pid: int | None) -> None:
    """The asyncio tasks of one process with their stacks (GET /tasks)."""
    _print(client.request("GET", "/tasks" + (f"?pid={pid}" if pid else "")))


@ctl_command.command()
@click.pass_obj
def health(client: AdminClient) -> None:
    """Liveness and readiness (GET /healthz, GET /readyz)."""
    _print({"healthz": client.request("GET", "/healthz"),
            "readyz": client.request("GET", "/readyz")})


@ctl_command.group()
def apps() -> None:
    """The mounted apps (GET/POST/DELETE /apps)."""


@apps.command("list")
@click.pass_obj
def apps_list(client: AdminClient) -> None:
    """Every mounted app with its route and source."""
    _print(client.request("GET", "/apps"))


@apps.command("mount")
@click.argument("route")
@click.argument("target")
@click.option("--git", "url", help="Clone the app from this git repository first.")
@click.option("--ref", help="The branch, tag or commit to check out (default: HEAD).")
@click.pass_obj
def apps_mount(client: AdminClient, route: str, target: str, url: str | None,
               ref: str | None) -> None:
    """Mount TARGET ("module:attr") at ROUTE, replacing what is there, without a restart."""
    body = {"route": route, "app": target}
    if url:
        body["git"] = url
    if ref:
        body["ref"] = ref
    _print(client.request("POST", "/apps", body))


@apps.command("unmount")
@click.argument("route")
@click.pass_obj
def apps_unmount(client: AdminClient, route: str) -> None:
    """Unmount the app at ROUTE (its lifespan shuts down)."""
    from urllib.parse import quote

    _print(client.request("DELETE", "/apps?route=" + quote(route)))


@ctl_command.group()
def pod() -> None:
    """The pod's beans: list, add, cancel, restart (GET/POST /pod)."""


def _pod_path(path: str, pid: int | None) -> str:
    return path + (f"?pid={pid}" if pid else "")


def _bean_target(bean: str) -> dict[str, Any]:
    """A bean named on the command line: a number is an id, anything else a label."""
    return {"id": int(bean)} if bean.isdigit() else {"label": bean}


@pod.command("list")
@click.option("--pid", type=int, help="Only this process (default: every process with beans).")
@click.pass_obj
def pod_list(client: AdminClient, pid: int | None) -> None:
    """Every bean with its state, restarts, last error and current stack."""
    _print(client.request("GET", _pod_path("/pod", pid)))


@pod.command("add")
@click.argument("bean")
@click.option("--label", help="The bean's label.")
@click.option("--pid", type=int, help="Only this process (default: see docs/admin.md).")
@click.pass_obj
def pod_add(client: AdminClient, bean: str, label: str | None, pid: int | None) -> None:
    """Start BEAN, given as on `qactuar pod run`: pkg.mod.func[:k1=v1,k2=v2]."""
    from qactuar.pod.config import parse_bean_argument

    try:
        body = parse_bean_argument(bean)
    except ConfigError as exc:
        _fail(str(exc))
    if label:
        body["label"] = label
    try:
        json.dumps(body)
    except (TypeError, ValueError) as exc:
        _fail(f"bean {bean!r}: a keyword value cannot be sent as JSON: {exc}")
    _print(client.request("POST", _pod_path("/pod", pid), body))


@pod.command("cancel")
@click.argument("bean")
@click.option("--pid", type=int, help="Only this process (needed for an id in prefork).")
@click.pass_obj
def pod_cancel(client: AdminClient, bean: str, pid: int | None) -> None:
    """Cancel the beans with this id (a number) or label; they are not restarted."""
    _print(client.request("POST", _pod_path("/pod/cancel", pid), _bean_target(bean)))


@pod.command("restart")
@click.argument("bean")
@click.option("--pid", type=int, help="Only this process (needed for an id in prefork).")
@click.pass_obj
def pod_restart(client: AdminClient, bean: str, pid: int | None) -> None:
    """Cancel the beans with this id (a number) or label and start them again."""
    _print(client.request("POST", _pod_path("/pod/restart", pid), _bean_target(bean)))

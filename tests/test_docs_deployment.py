"""docs/deployment.md's examples, run with the real things: nginx and HAProxy in front of
Qactuar, systemd-socket-activate passing it a socket as the socket unit would, and the
container examples' command, environment, probes and graceful drain."""

from __future__ import annotations

import asyncio
import configparser
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from conftest import ServerProcess, wait_until
from docs_commands import command_line, serve_line
from docs_examples import code_blocks
from qactuar.config import Config, read_environment

PAGE = "deployment.md"

# The app behind the proxies: what it was told about the client, and a WebSocket echo.
WEB_APP = """\
import asyncio
import json
import os


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":  # in flight until the test creates the file "release"
        open("started", "w").close()
        while not os.path.exists("release"):
            await asyncio.sleep(0.01)
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"],
                       "x-forwarded-for": headers.get("x-forwarded-for"),
                       "x-forwarded-proto": headers.get("x-forwarded-proto")})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def program(name: str) -> str:
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    return found


@pytest.fixture
def web(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "web.py").write_text(WEB_APP)
    server = serve_line("qactuar web:app", tmp_path)
    yield server
    assert server.stop() == 0, server.output


def echo_through(port: int) -> str:
    async def talk() -> str:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("hello")
            return str(await ws.recv())

    return asyncio.run(asyncio.wait_for(talk(), 20))


def start_daemon(argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        daemon = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: accepts(port) or daemon.poll() is not None, 10,
                   f"{argv[0]} to listen")
        assert daemon.poll() is None, log.read_text()
    except BaseException:
        daemon.kill()
        daemon.wait()
        raise
    return daemon


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    daemon.terminate()
    try:
        daemon.wait(10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


# -- behind a reverse proxy ----------------------------------------------------------------


def test_nginx_example_proxies_http_with_kept_alive_upstreams_and_websockets(
        web: ServerProcess, tmp_path: Path) -> None:
    (section,) = code_blocks(PAGE, "nginx")
    port = free_port()
    section = section.replace("127.0.0.1:8000", f"127.0.0.1:{web.port}")
    section = section.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for temp in ("body", "proxy"):
        (tmp_path / temp).mkdir()
    config = tmp_path / "nginx.conf"
    # The page's section inside the smallest whole configuration nginx runs in the foreground.
    config.write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n"
        f"    client_body_temp_path {tmp_path}/body;\n    proxy_temp_path {tmp_path}/proxy;\n"
        f"{section}}}\n")
    nginx = start_daemon([program("nginx"), "-p", str(tmp_path), "-e", str(tmp_path /
                         "error.log"), "-c", str(config)], port, tmp_path / "nginx.out")
    try:
        first = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).json()
        second = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).json()
        # What the page says: client is the proxy, the forwarded headers reach the app.
        assert first["client"][0] == "127.0.0.1"
        assert (first["x-forwarded-for"], first["x-forwarded-proto"]) == ("127.0.0.1", "http")
        assert first["scheme"] == "http"
        # keepalive + HTTP/1.1 + empty Connection: both requests on one upstream connection.
        assert second["client"] == first["client"]
        assert echo_through(port) == "echo: hello"
    finally:
        stop_daemon(nginx)


def test_haproxy_example_proxies_http_and_websockets(web: ServerProcess,
                                                     tmp_path: Path) -> None:
    (config,) = code_blocks(PAGE, "haproxy")
    port = free_port()
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{web.port}")
    config = config.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    (tmp_path / "haproxy.cfg").write_text(config)
    haproxy = start_daemon([program("haproxy"), "-db", "-f", str(tmp_path / "haproxy.cfg")],
                           port, tmp_path / "haproxy.out")
    try:
        seen = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).json()
        assert seen["client"][0] == "127.0.0.1"
        assert seen["x-forwarded-for"] == "127.0.0.1"  # option forwardfor
        assert echo_through(port) == "echo: hello"
    finally:
        stop_daemon(haproxy)


# -- systemd -------------------------------------------------------------------------------


def unit(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_systemd_units_socket_activation_reload_and_stop(tmp_path: Path) -> None:
    socket_unit, service_unit = (unit(text) for text in code_blocks(PAGE, "ini"))
    service = service_unit["Service"]
    assert socket_unit["Socket"]["ListenStream"] == "127.0.0.1:8000"
    assert service_unit["Unit"]["Requires"] == "qactuar.socket"
    name, _, value = service["Environment"].partition("=")
    assert float(service["TimeoutStopSec"]) > float(value) == Config(**read_environment(
        {name: value})).SHUTDOWN_TIMEOUT
    (tmp_path / "web.py").write_text(WEB_APP)
    port = free_port()
    _, exec_start = command_line(service["ExecStart"].replace("/srv/web/.venv/bin/", ""))
    # What the socket unit does, by systemd's own tool: listen, and start the service
    # (exec, so LISTEN_PID is its pid) when the first connection arrives.
    argv = [program("systemd-socket-activate"), "-l", f"127.0.0.1:{port}",
            "-E", service["Environment"], *exec_start]
    answers: list[Any] = []

    def first_request() -> None:
        wait_until(lambda: accepts(port), 10, "systemd-socket-activate to listen")
        answers.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=20).json())

    requester = threading.Thread(target=first_request)
    requester.start()
    server = ServerProcess([], cwd=tmp_path, command=argv, env={})
    try:
        requester.join(30)
        assert answers and answers[0]["scheme"] == "http", server.output
        server.wait_for_log(r"Prefork supervisor pid \d+: bound http://127\.0\.0\.1:"
                            + str(port))
        _, reload = command_line(service["ExecReload"].replace("$MAINPID",
                                                               str(server.proc.pid)))
        subprocess.run(reload, check=True, timeout=10)
        server.wait_for_log("Reload finished", timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        # KillMode=mixed: SIGTERM to the main process only.
        assert server.stop(timeout=float(service["TimeoutStopSec"])) == 0, server.output


# -- containers ----------------------------------------------------------------------------


def dockerfile() -> tuple[dict[str, str], list[str], str]:
    """The Dockerfile's ENV, CMD (exec form) and EXPOSE."""
    (text,) = code_blocks(PAGE, "dockerfile")
    text = text.replace("\\\n", " ")
    env_line = next(line for line in text.splitlines() if line.startswith("ENV "))
    env = dict(pair.split("=", 1) for pair in env_line.split()[1:])
    cmd = json.loads(next(line for line in text.splitlines()
                          if line.startswith("CMD "))[len("CMD "):])
    expose = next(line for line in text.splitlines() if line.startswith("EXPOSE "))
    return env, cmd, expose.split()[1]


def test_dockerfile_command_and_environment_serve(tmp_path: Path) -> None:
    env, cmd, exposed = dockerfile()
    assert env["QACTUAR_PORT"] == exposed
    Config(**read_environment(env))
    (tmp_path / "web.py").write_text(WEB_APP)
    _, argv = command_line(" ".join(cmd))
    server = ServerProcess([], cwd=tmp_path, command=argv, env={**env, "QACTUAR_PORT": "0"})
    try:
        assert server.host == "0.0.0.0"
        assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0, server.output
    assert not [line for line in server.lines if " ACCESS " in line]  # ACCESS_LOG=false


def kubernetes_container() -> tuple[dict[str, Any], dict[str, Any]]:
    (text,) = code_blocks(PAGE, "yaml")
    pod = yaml.safe_load(text)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_kubernetes_example_is_consistent_with_the_settings() -> None:
    pod, container = kubernetes_container()
    env = {item["name"]: item["value"] for item in container["env"]}
    config = Config(**read_environment(env))
    (port,) = [item["containerPort"] for item in container["ports"]]
    assert port == config.PORT
    assert container["readinessProbe"]["httpGet"]["port"] == port
    assert container["livenessProbe"]["httpGet"]["port"] == port
    assert env["QACTUAR_READY_PATH"] == container["readinessProbe"]["httpGet"]["path"]
    assert env["QACTUAR_HEALTH_PATH"] == container["livenessProbe"]["httpGet"]["path"]
    assert pod["enableServiceLinks"] is False
    sleep, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(seconds) + config.SHUTDOWN_TIMEOUT


def test_kubernetes_example_probe_and_graceful_drain(tmp_path: Path) -> None:
    """The container's command and environment: both probes pass while serving; on
    SIGTERM the port stops accepting (the probes fail) while the request in flight
    still gets its answer, and the process exits 0 within the grace period."""
    pod, container = kubernetes_container()
    env = {item["name"]: item["value"] for item in container["env"]}
    (tmp_path / "web.py").write_text(WEB_APP)
    _, argv = command_line(" ".join(container["command"]))
    server = ServerProcess([], cwd=tmp_path, command=argv, env={**env, "QACTUAR_PORT": "0"})
    port = server.port
    try:
        for probe in ("livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(
            httpx.get(f"http://127.0.0.1:{port}/slow", timeout=20)))
        slow.start()
        wait_until(lambda: (tmp_path / "started").exists(), 10, "the slow request")
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("Shutting down")
        wait_until(lambda: not accepts(port), 5, "the port to stop accepting")
        (tmp_path / "release").touch()
        slow.join(20)
        assert answers and answers[0].status_code == 200
    finally:
        grace = pod["terminationGracePeriodSeconds"]
        assert server.stop(timeout=grace) == 0, server.output
    assert re.search(r"Stopped$", server.output, flags=re.M)

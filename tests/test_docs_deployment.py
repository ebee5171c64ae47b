"""docs/deployment.md's examples, run with the real things: nginx (TLS termination, HTTP/2
to the client, WebSocket, proxy headers from a trusted peer only) and HAProxy (PROXY
protocol v1 and v2, a forged header refused) in front of Qactuar, the test's client on
127.0.0.2 so its address differs from the proxy's; systemd-socket-activate passing a
socket as the socket unit would; the container examples' build stages, command,
environment, probes, graceful drain and the service-link error."""

from __future__ import annotations

import asyncio
import configparser
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from conftest import (
    ServerProcess,
    child_env,
    recv_until_closed,
    run_qactuar,
    wait_until,
    write_tls_files,
)
from docs_commands import command_line, serve_line
from docs_examples import code_blocks
from qactuar.config import Config, read_environment

PAGE = "deployment.md"

# The app behind the proxies: what it was told about the client, and a WebSocket echo.
WEB_APP = """\
import asyncio
import json
import os

from fastapi import FastAPI

api = FastAPI()


@api.get("/api/items")
async def items():
    return {"items": []}


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["text"] == "who?":
                text = json.dumps({"scheme": scope["scheme"], "client": scope["client"]})
                await send({"type": "websocket.send", "text": text})
                continue
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})
    if scope["type"] != "http":
        return
    if scope["path"].startswith("/api"):  # a FastAPI app, for its redirects
        await api(scope, receive, send)
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


CLIENT_ADDRESS = "127.0.0.2"  # the test's client: not the proxy's 127.0.0.1, not trusted


def client(**options: Any) -> httpx.Client:
    """An HTTP client whose connections come from CLIENT_ADDRESS."""
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS, verify=options.pop(
        "verify", True), http2=options.pop("http2", False))
    return httpx.Client(transport=transport, timeout=10, **options)


def ask_websocket(url: str, tls: Any = None) -> dict[str, Any]:
    async def talk() -> dict[str, Any]:
        async with websockets.connect(url, ssl=tls,
                                      local_addr=(CLIENT_ADDRESS, 0)) as ws:
            await ws.send("who?")
            return json.loads(await ws.recv())

    return asyncio.run(asyncio.wait_for(talk(), 20))


def nginx_config(tmp_path: Path, upstream: int, port: int, tls_port: int) -> Path:
    (section,) = code_blocks(PAGE, "nginx")
    tls = write_tls_files(tmp_path)
    section = section.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    section = section.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    section = section.replace("listen 8443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;")
    section = section.replace("/etc/ssl/web/cert.pem", str(tls["cert"]))
    section = section.replace("/etc/ssl/web/key.pem", str(tls["key"]))
    for temp in ("body", "proxy"):
        (tmp_path / temp).mkdir()
    config = tmp_path / "nginx.conf"
    # The page's section inside the smallest whole configuration nginx runs in the foreground.
    config.write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n"
        f"    client_body_temp_path {tmp_path}/body;\n    proxy_temp_path {tmp_path}/proxy;\n"
        f"{section}}}\n")
    return config


def test_nginx_example_terminates_tls_and_the_app_sees_the_real_client(
        web: ServerProcess, tmp_path: Path) -> None:
    port, tls_port = free_port(), free_port()
    config = nginx_config(tmp_path, web.port, port, tls_port)
    nginx = start_daemon([program("nginx"), "-p", str(tmp_path), "-e", str(tmp_path /
                         "error.log"), "-c", str(config)], tls_port, tmp_path / "nginx.out")
    ca = str(tmp_path / "ca.pem")
    try:
        with client(verify=ssl.create_default_context(cafile=ca), http2=True) as browser:
            response = browser.get(f"https://127.0.0.1:{tls_port}/")
            assert response.http_version == "HTTP/2"  # HTTP/2 to the client
            seen = response.json()
            # The client's address and https, not nginx's 127.0.0.1 and http.
            assert seen["client"][0] == CLIENT_ADDRESS and seen["scheme"] == "https"
            # A forged X-Forwarded-For is at the left of nginx's list: never believed.
            forged = browser.get(f"https://127.0.0.1:{tls_port}/",
                                 headers={"X-Forwarded-For": "6.6.6.6"}).json()
            assert forged["client"][0] == CLIENT_ADDRESS
            assert forged["x-forwarded-for"] == f"6.6.6.6, {CLIENT_ADDRESS}"
            # FastAPI's trailing-slash redirect stays on https, port included.
            redirect = browser.get(f"https://127.0.0.1:{tls_port}/api/items/")
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"https://127.0.0.1:{tls_port}/api/items"
        web.wait_for_log(rf'ACCESS {re.escape(CLIENT_ADDRESS)}:0 "GET / HTTP/1\.1" 200')
        # WebSocket through the TLS proxy is wss, from the real client.
        tls = ssl.create_default_context(cafile=ca)
        assert ask_websocket(f"wss://127.0.0.1:{tls_port}/", tls) == {
            "scheme": "wss", "client": [CLIENT_ADDRESS, 0]}
        assert echo_through(port) == "echo: hello"  # plain http and ws on the other port
        # Straight to Qactuar from an untrusted address, the same forged field is ignored.
        with client() as direct:
            alone = direct.get(f"http://127.0.0.1:{web.port}/",
                               headers={"X-Forwarded-For": "6.6.6.6",
                                        "X-Forwarded-Proto": "https"}).json()
        assert alone["client"][0] == CLIENT_ADDRESS and alone["scheme"] == "http"
    finally:
        stop_daemon(nginx)


def test_nginx_example_keeps_upstream_connections_alive(tmp_path: Path) -> None:
    """keepalive + HTTP/1.1 + empty Connection: two requests on one upstream connection
    (seen with proxy headers off, so the scope's client is nginx's own address and port)."""
    (tmp_path / "web.py").write_text(WEB_APP)
    web = serve_line("qactuar web:app --no-proxy-headers", tmp_path)
    port, tls_port = free_port(), free_port()
    config = nginx_config(tmp_path, web.port, port, tls_port)
    nginx = start_daemon([program("nginx"), "-p", str(tmp_path), "-e", str(tmp_path /
                         "error.log"), "-c", str(config)], port, tmp_path / "nginx.out")
    try:
        first = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).json()
        second = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).json()
        assert first["client"][0] == "127.0.0.1" and first["client"][1] != 0
        assert second["client"] == first["client"]
        assert first["x-forwarded-proto"] == "http" and first["scheme"] == "http"
    finally:
        stop_daemon(nginx)
        assert web.stop() == 0


@pytest.mark.parametrize("version", ["send-proxy-v2", "send-proxy"])
def test_haproxy_example_sends_the_proxy_protocol(tmp_path: Path, version: str) -> None:
    (config,) = code_blocks(PAGE, "haproxy")
    (tmp_path / "web.py").write_text(WEB_APP)
    web = serve_line("qactuar web:app --proxy-protocol", tmp_path)
    port = free_port()
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{web.port}")
    config = config.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    config = config.replace("send-proxy-v2", version)
    (tmp_path / "haproxy.cfg").write_text(config)
    haproxy = start_daemon([program("haproxy"), "-db", "-f", str(tmp_path / "haproxy.cfg")],
                           port, tmp_path / "haproxy.out")
    try:
        with client() as browser:
            seen = browser.get(f"http://127.0.0.1:{port}/").json()
        # The PROXY header's client: the test's own address and port, not HAProxy's.
        assert seen["client"][0] == CLIENT_ADDRESS and seen["client"][1] > 0
        assert ask_websocket(f"ws://127.0.0.1:{port}/")["client"][0] == CLIENT_ADDRESS
        web.wait_for_log(rf"ACCESS {re.escape(CLIENT_ADDRESS)}:\d+ \"GET / HTTP/1\.1\" 200")
        # A client reaching Qactuar directly cannot claim an address with a header.
        with socket.create_connection(("127.0.0.1", web.port), timeout=5,
                                      source_address=(CLIENT_ADDRESS, 0)) as direct:
            direct.sendall(b"PROXY TCP4 6.6.6.6 127.0.0.1 1000 80\r\n"
                           b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert recv_until_closed(direct) == b""
        web.wait_for_log(r"PROXY protocol: a peer not in FORWARDED_ALLOW_IPS")
    finally:
        stop_daemon(haproxy)
        assert web.stop() == 0, web.output


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


def test_dockerfile_builds_the_compiled_wheel_in_a_stage_of_its_own() -> None:
    (text,) = code_blocks(PAGE, "dockerfile")
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, flags=re.M)
    assert [name for _, name in stages] == ["build", ""]
    build, run = text.split("\nFROM ", 2)[1:]
    assert "gcc" in build and "pip wheel" in build
    assert "COPY --from=build /wheels" in run and "/wheels/*.whl" in run and "gcc" not in run


def test_kubernetes_service_link_error_is_the_one_shown() -> None:
    (shown,) = code_blocks(PAGE, "text")
    result = run_qactuar(env=child_env(QACTUAR_PORT="tcp://10.0.0.11:8000"))
    assert result.returncode == 2
    assert result.stderr.strip() == shown.strip()


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

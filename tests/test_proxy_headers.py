"""Proxy headers: Forwarded / X-Forwarded-* from trusted peers set the scope's client,
scheme, server and root_path (HTTP/1.1, HTTP/2, WebSocket) and the access log's client;
an untrusted peer's are ignored.  The unit part checks the chain walk and the parsers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import ServerFactory, ServerProcess, read_response
from h2_client import H2Client
from qactuar.config import Config
from qactuar.proxy_headers import ProxyHeaders, TrustedPeers, parse_allow_list
from ws_client import RawWebSocket


def scope_of(server: ServerProcess, fields: list[tuple[str, str]], path: str = "/scope"
             ) -> dict[str, Any]:
    with server.connect() as sock:
        lines = [f"GET {path} HTTP/1.1", "Host: app.test", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in fields]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, _headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    return json.loads(body)


def headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {name: value for name, value in scope["headers"]}


FORWARDED_FIELDS = [("X-Forwarded-For", "203.0.113.7, 127.0.0.1"),
                    ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "shop.example"),
                    ("X-Forwarded-Prefix", "/shop")]


def test_trusted_proxy_sets_client_scheme_server_root_path_and_log(
        start_server: ServerFactory) -> None:
    server = start_server("apps.scope_echo:app")
    scope = scope_of(server, FORWARDED_FIELDS)
    assert scope["client"] == ["203.0.113.7", 0]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["shop.example", 443]
    assert scope["root_path"] == "/shop"
    assert scope["path"] == "/shop/scope"
    assert headers_of(scope)["host"] == "shop.example"
    server.wait_for_log(r'ACCESS 203\.0\.113\.7:0 "GET /shop/scope HTTP/1\.1" 200')
    # The next request on a fresh connection without the fields is the peer's own.
    plain = scope_of(server, [])
    assert plain["client"][0] == "127.0.0.1" and plain["scheme"] == "http"
    assert plain["root_path"] == ""


def test_untrusted_peer_fields_are_ignored(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app", "--forwarded-allow-ips", "10.0.0.0/8")
    scope = scope_of(server, [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
                              ("Forwarded", "for=6.6.6.6;proto=https")])
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"
    server.wait_for_log(r'ACCESS 127\.0\.0\.1:\d+ "GET /scope')


def test_proxy_headers_off(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app", "--no-proxy-headers")
    scope = scope_of(server, [("X-Forwarded-For", "6.6.6.6")])
    assert scope["client"][0] == "127.0.0.1"


def test_rfc7239_forwarded_walks_from_the_right(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app", "--forwarded-allow-ips", "127.0.0.1,192.0.2.0/24")
    scope = scope_of(server, [
        ("Forwarded", 'for=198.51.100.9;proto=https;host="a.example:8443", '
                      'for="192.0.2.43:4711";proto=http;host=inner'),
        ("X-Forwarded-For", "7.7.7.7")])  # Forwarded wins over X-Forwarded-*
    assert scope["client"] == ["198.51.100.9", 0]
    assert scope["scheme"] == "https"
    assert scope["server"] == ["a.example", 8443]


def test_websocket_behind_tls_proxy_is_wss(start_server: ServerFactory) -> None:
    server = start_server("apps.ws_app:app")
    ws = RawWebSocket.connect(server, "/scope", headers=[
        ("X-Forwarded-For", "203.0.113.8"), ("X-Forwarded-Proto", "https")])
    try:
        assert ws.accepted, ws.status
        scope = json.loads(ws.recv_data_frame().payload)
    finally:
        ws.close()
    assert scope["scheme"] == "wss"
    assert scope["client"] == ["203.0.113.8", 0]


def test_http2_request_uses_forwarded_fields(start_server: ServerFactory) -> None:
    server = start_server("apps.basic:app")
    with H2Client(server.host, server.port) as h2c:
        result = h2c.get("/scope", headers=[(b"x-forwarded-for", b"203.0.113.9"),
                                            (b"x-forwarded-proto", b"https")])
    scope = json.loads(result.body)
    assert scope["client"] == ["203.0.113.9", 0]
    assert scope["scheme"] == "https"


# -- the rules, without a server ---------------------------------------------------

def resolve(allow: str, fields: list[tuple[bytes, bytes]],
            client: tuple[str, int] | None = ("127.0.0.1", 5000)) -> Any:
    proxy = ProxyHeaders(Config(FORWARDED_ALLOW_IPS=allow))
    return proxy.resolve(fields, client, "http", ("127.0.0.1", 8000))


def test_chain_stops_at_the_first_untrusted_hop() -> None:
    view = resolve("127.0.0.1,10.0.0.0/8",
                   [(b"x-forwarded-for", b"1.1.1.1, 6.6.6.6, 10.1.2.3")])
    assert view.client == ("6.6.6.6", 0)  # 1.1.1.1 was written by 6.6.6.6: not believed
    view = resolve("127.0.0.1,10.0.0.0/8", [(b"x-forwarded-for", b"10.0.0.1, 10.1.2.3")])
    assert view.client == ("10.0.0.1", 0)  # all trusted: the leftmost
    view = resolve("127.0.0.1", [(b"x-forwarded-for", b"1.1.1.1"),
                                 (b"x-forwarded-for", b"2.2.2.2")])
    assert view.client == ("2.2.2.2", 0)  # repeated fields are one list


def test_unix_socket_peers_and_allow_list() -> None:
    assert resolve("unix", [(b"x-forwarded-for", b"1.1.1.1")], client=None).client == (
        "1.1.1.1", 0)
    assert resolve("127.0.0.1", [(b"x-forwarded-for", b"1.1.1.1")], client=None) is None
    peers = TrustedPeers("::1,192.168.0.0/16")
    assert peers.trusts("::1") and peers.trusts("192.168.4.5")
    assert peers.trusts("::ffff:192.168.4.5")  # an IPv4-mapped peer on a dual-stack socket
    assert not peers.trusts("192.169.0.1") and not peers.trusts(None)
    with pytest.raises(ValueError):
        parse_allow_list("127.0.0.1,not-an-address")


def test_forged_or_malformed_values_are_not_used() -> None:
    view = resolve("127.0.0.1", [(b"x-forwarded-proto", b"gopher"),
                                 (b"x-forwarded-host", b"evil\r\nx: y"),
                                 (b"x-forwarded-prefix", b"no-slash")])
    assert view.scheme == "http"
    assert view.server == ("127.0.0.1", 8000)
    assert view.prefix == ""
    view = resolve("127.0.0.1", [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https')])
    assert view.client == ("2001:db8::1", 4711) and view.scheme == "https"
    view = resolve("127.0.0.1", [(b"x-forwarded-port", b"8443"),
                                 (b"x-forwarded-proto", b"https")])
    assert view.server == ("127.0.0.1", 8443)


def test_bad_allow_list_is_one_line_error() -> None:
    from conftest import assert_one_line_error, run_failing_server

    line = assert_one_line_error(run_failing_server("--forwarded-allow-ips", "10.0.0.0/33"))
    assert "FORWARDED_ALLOW_IPS" in line

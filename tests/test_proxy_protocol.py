"""The PROXY protocol (v1 text, v2 binary) on raw sockets: the header's client reaches the
scope and the access log, v2's SSL TLV makes the request https with a `tls` extension,
a malformed header or an untrusted peer closes that connection only.  (HAProxy itself
sends the headers in tests/test_deployment_proxies.py.)"""

from __future__ import annotations

import ipaddress
import json
import struct
from typing import Any

import pytest

from conftest import (
    ServerFactory,
    ServerProcess,
    assert_one_line_error,
    read_response,
    recv_until_closed,
    run_failing_server,
)
from qactuar.proxy_protocol import V2_SIGNATURE, ProxyHeaderError, parse_header

REQUEST = b"GET /scope HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"


def v2_header(source: str, dest: str, source_port: int, dest_port: int,
              tlvs: bytes = b"", command: int = 1) -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(dest)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", source_port, dest_port) + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def scope_after(server: ServerProcess, header: bytes, split: bool = False) -> dict[str, Any]:
    with server.connect() as sock:
        if split:  # the header arrives in pieces
            for index in range(0, len(header), 5):
                sock.sendall(header[index:index + 5])
            sock.sendall(REQUEST)
        else:
            sock.sendall(header + REQUEST)
        status, _headers, body = read_response(sock)
    assert status.startswith(b"HTTP/1.1 200"), status
    return json.loads(body)


@pytest.fixture
def proxied(start_server: ServerFactory) -> ServerProcess:
    return start_server("apps.scope_echo:app", "--proxy-protocol")


def test_v1_sets_client_and_server(proxied: ServerProcess) -> None:
    scope = scope_after(proxied, b"PROXY TCP4 198.51.100.22 203.0.113.1 35646 80\r\n")
    assert scope["client"] == ["198.51.100.22", 35646]
    assert scope["server"] == ["203.0.113.1", 80]
    proxied.wait_for_log(r'ACCESS 198\.51\.100\.22:35646 "GET /scope')
    scope = scope_after(proxied, b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n", split=True)
    assert scope["client"] == ["2001:db8::7", 4000]
    scope = scope_after(proxied, b"PROXY UNKNOWN\r\n")  # the proxy speaks for itself
    assert scope["client"][0] == "127.0.0.1"


def test_v2_with_tls_tlv_is_https(proxied: ServerProcess) -> None:
    ssl_tlv = tlv(0x20, b"\x01" + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))
    header = v2_header("192.0.2.10", "192.0.2.1", 51000, 443, tlv(0x02, b"shop.example") + ssl_tlv)
    scope = scope_after(proxied, header, split=True)
    assert scope["client"] == ["192.0.2.10", 51000]
    assert scope["scheme"] == "https"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304
    local = scope_after(proxied, v2_header("192.0.2.10", "192.0.2.1", 1, 2, command=0))
    assert local["client"][0] == "127.0.0.1" and local["scheme"] == "http"  # LOCAL


@pytest.mark.parametrize("bad", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no header at all
    b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",  # a port out of range
    b"PROXY TCP4 ::1 5.6.7.8 1 80\r\n",  # the wrong family
    b"PROXY " + b"1" * 120,  # a line that never ends
    V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,  # version 3
])
def test_malformed_header_closes_that_connection_only(proxied: ServerProcess,
                                                      bad: bytes) -> None:
    with proxied.connect() as sock:
        sock.sendall(bad)
        assert recv_until_closed(sock) == b""  # no answer: not HTTP yet
    proxied.wait_for_log("PROXY protocol: .*closing the connection")
    scope = scope_after(proxied, b"PROXY TCP4 198.51.100.3 203.0.113.1 1000 80\r\n")
    assert scope["client"] == ["198.51.100.3", 1000]  # the server serves on


def test_untrusted_peer_is_refused(start_server: ServerFactory) -> None:
    server = start_server("apps.scope_echo:app", "--proxy-protocol",
                          "--forwarded-allow-ips", "10.0.0.0/8")
    with server.connect() as sock:
        sock.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\n" + REQUEST)
        assert recv_until_closed(sock) == b""
    server.wait_for_log("PROXY protocol: a peer not in FORWARDED_ALLOW_IPS")


def test_not_with_tls(tmp_path: Any) -> None:
    line = assert_one_line_error(run_failing_server(
        "--proxy-protocol", "--ssl-cert-path", str(tmp_path / "c.pem"),
        "--ssl-key-path", str(tmp_path / "k.pem")))
    assert "PROXY_PROTOCOL" in line


def test_parser_edges() -> None:
    assert parse_header(b"PROXY TCP4 1.2.3.4") is None  # more to come
    assert parse_header(V2_SIGNATURE[:7]) is None
    with pytest.raises(ProxyHeaderError):
        parse_header(b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n")
    with pytest.raises(ProxyHeaderError):
        parse_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n")  # a leading zero
    whole = v2_header("1.2.3.4", "5.6.7.8", 1, 2)
    header = parse_header(whole + b"GET")  # the client's bytes after it stay unread
    assert header is not None and header.length == len(whole)
    assert parse_header(whole[:-1]) is None
    bad_tlv = v2_header("1.2.3.4", "5.6.7.8", 1, 2, tlvs=b"\x02\x00\x09ab")
    with pytest.raises(ProxyHeaderError):
        parse_header(bad_tlv)

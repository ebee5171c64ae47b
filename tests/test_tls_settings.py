"""TLS settings: key password, client certificates (mTLS), minimum version, ciphers,
ALPN, the handshake timeout and the ASGI `tls` scope extension."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from conftest import ServerProcess, assert_one_line_error, run_qactuar

APP = "apps.h2_app:app"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.com", common_name="client one")
    stranger = trustme.CA().issue_cert("client@example.com", common_name="stranger")
    paths = {name: folder / f"{name}.pem" for name in
             ("ca", "cert", "key", "client", "stranger", "encrypted")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    stranger.private_key_and_cert_chain_pem.write_to_path(str(paths["stranger"]))
    key = serialization.load_pem_private_key(paths["key"].read_bytes(), password=None)
    paths["encrypted"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    return paths


def tls_args(pki: dict[str, Path], *extra: str) -> list[str]:
    return ["--ssl-cert-path", str(pki["cert"]), "--ssl-key-path", str(pki["key"]), *extra]


def client_context(pki: dict[str, Path], cert: str | None = None,
                   alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if cert:
        context.load_cert_chain(str(pki[cert]))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def handshake(server: ServerProcess, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((server.host, server.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def scope_over_https(server: ServerProcess, context: ssl.SSLContext) -> dict:
    with httpx.Client(verify=context) as http:
        return json.loads(http.get(f"{server.url}/scope").text)


# -- start-up errors ------------------------------------------------------------------------


def test_encrypted_key_with_its_password_serves(start_server, pki) -> None:
    server = start_server(APP, "--ssl-cert-path", str(pki["cert"]), "--ssl-key-path",
                          str(pki["encrypted"]), "--ssl-key-password", "s3cret")
    assert scope_over_https(server, client_context(pki))["scheme"] == "https"


@pytest.mark.parametrize(("args", "words"), [
    (["--ssl-key-password", "wrong"], "SSL_KEY_PASSWORD"),
    (["--ssl-ca-path", "/nonexistent/ca.pem"], "SSL_CA_PATH"),
    (["--ssl-cert-reqs", "required"], "SSL_CA_PATH"),
    (["--ssl-ciphers", "NO-SUCH-CIPHER"], "SSL_CIPHERS"),
    (["--ssl-min-version", "1.1"], "SSL_MIN_VERSION"),
])
def test_bad_tls_settings_are_one_line_and_exit_2(pki, args, words) -> None:
    key = pki["encrypted"] if "--ssl-key-password" in args else pki["key"]
    result = run_qactuar(APP, "--port", "0", "--ssl-cert-path", str(pki["cert"]),
                         "--ssl-key-path", str(key), *args)
    assert words in assert_one_line_error(result)


def test_ca_file_that_is_not_a_certificate_is_one_line(pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = run_qactuar(APP, "--port", "0", *tls_args(pki, "--ssl-ca-path", str(junk)))
    assert "SSL_CA_PATH" in assert_one_line_error(result)


def test_tls_option_without_a_certificate_is_one_line() -> None:
    result = run_qactuar(APP, "--port", "0", "--ssl-ciphers", "ECDHE+AESGCM")
    assert "SSL_CERT_PATH" in assert_one_line_error(result)


# -- client certificates (mTLS) ----------------------------------------------------------


def test_required_client_certificate(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--ssl-ca-path", str(pki["ca"]),
                                         "--ssl-cert-reqs", "required"))
    scope = scope_over_https(server, client_context(pki, cert="client"))
    tls = scope["extensions"]["tls"]
    assert len(tls["client_cert_chain"]) == 1
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["client_cert_name"].startswith("CN=client one")
    for bad in (None, "stranger"):
        with pytest.raises((ssl.SSLError, httpx.HTTPError, OSError)):
            scope_over_https(server, client_context(pki, cert=bad))
    # Those failed handshakes cost their connections only.
    assert scope_over_https(server, client_context(pki, cert="client"))["scheme"] == "https"
    assert "Traceback" not in server.output


def test_optional_client_certificate(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--ssl-ca-path", str(pki["ca"]),
                                         "--ssl-cert-reqs", "optional"))
    without = scope_over_https(server, client_context(pki))["extensions"]["tls"]
    with_cert = scope_over_https(server, client_context(pki, cert="client"))
    assert without["client_cert_chain"] == [] and without["client_cert_name"] is None
    assert len(with_cert["extensions"]["tls"]["client_cert_chain"]) == 1


# -- versions, ciphers, ALPN ---------------------------------------------------------------


def test_tls_extension_reports_version_and_cipher(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--ssl-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"))
    context = client_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = scope_over_https(server, context)["extensions"]["tls"]
    assert tls["tls_version"] == 0x0303
    assert tls["cipher_suite"] == 0xC02B  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    modern = scope_over_https(server, client_context(pki))["extensions"]["tls"]
    assert modern["tls_version"] == 0x0304 and isinstance(modern["cipher_suite"], int)


def test_ciphers_outside_the_list_fail_the_handshake(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--ssl-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"))
    context = client_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        handshake(server, context).close()


def test_min_version_1_3_refuses_tls_1_2(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--ssl-min-version", "1.3"))
    old = client_context(pki)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(server, old).close()
    assert scope_over_https(server, client_context(pki))["extensions"]["tls"][
        "tls_version"] == 0x0304


def test_default_min_version_accepts_tls_1_2(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki))
    old = client_context(pki)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert scope_over_https(server, old)["extensions"]["tls"]["tls_version"] == 0x0303


def test_alpn_offers_h2_and_http11(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki))
    for offered, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
        with handshake(server, client_context(pki, alpn=offered)) as sock:
            assert sock.selected_alpn_protocol() == chosen


def test_http2_off_offers_http11_only(start_server, pki) -> None:
    server = start_server(APP, *tls_args(pki, "--http2", "off"))
    with handshake(server, client_context(pki, alpn=["h2", "http/1.1"])) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"


# -- handshakes that go wrong --------------------------------------------------------------


def test_client_that_never_finishes_the_handshake_is_closed(start_server, pki) -> None:
    # Its own setting: a long HEADER_TIMEOUT does not keep the stalled handshake open.
    server = start_server(APP, *tls_args(pki, "--ssl-handshake-timeout", "1",
                                         "--header-timeout", "60"))
    with server.connect(timeout=15) as stalled:
        stalled.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        # Meanwhile other clients are served.
        assert scope_over_https(server, client_context(pki))["scheme"] == "https"
        stalled.settimeout(15)
        with contextlib.suppress(ConnectionResetError):
            assert stalled.recv(4096) == b""
    assert "Traceback" not in server.output


def test_plain_http_and_garbage_on_the_tls_port_cost_that_connection_only(start_server,
                                                                          pki) -> None:
    server = start_server(APP, *tls_args(pki))
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
        with server.connect() as sock:
            sock.sendall(junk)
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert scope_over_https(server, client_context(pki))["scheme"] == "https"
    assert "Traceback" not in server.output


def test_wss_scheme_over_tls(start_server, pki) -> None:
    from websockets.sync.client import connect

    server = start_server("apps.ws_app:app", *tls_args(pki))
    with connect(f"wss://127.0.0.1:{server.port}/scope",
                 ssl=client_context(pki)) as websocket:
        scope = json.loads(websocket.recv(timeout=10))
    assert scope["scheme"] == "wss"

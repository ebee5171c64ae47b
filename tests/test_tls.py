"""TLS basics: HTTPS with SSL_CERT_PATH/SSL_KEY_PATH, and clear errors for bad files."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme

from conftest import TESTS_DIR

# The servers of every test here run under each process model (conftest).
pytestmark = pytest.mark.all_models


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return ca, cert_path, key_path


def test_https_request_has_https_scheme(start_server, certificates) -> None:
    ca, cert_path, key_path = certificates
    server = start_server("apps.basic:app", "--ssl-cert-path", str(cert_path),
                          "--ssl-key-path", str(key_path))
    assert server.scheme == "https"
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        response = httpx.get(f"{server.url}/scope", verify=context)
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"


def test_plain_http_on_tls_port_costs_that_connection_only(start_server, certificates) -> None:
    ca, cert_path, key_path = certificates
    server = start_server("apps.basic:app", "--ssl-cert-path", str(cert_path),
                          "--ssl-key-path", str(key_path))
    with server.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        assert httpx.get(f"{server.url}/hello", verify=context).text == "Hello, world!"
    assert "Traceback" not in server.output


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qactuar", "apps.basic:app", *args],
                          capture_output=True, text=True, cwd=TESTS_DIR, timeout=30)


def test_missing_certificate_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _run_cli("--port", "0", "--ssl-cert-path", str(tmp_path / "nope.pem"),
                      "--ssl-key-path", str(tmp_path / "nope.key"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TLS" in lines[0] and "nope.pem" in lines[0]


def test_key_not_matching_certificate_is_exit_2(certificates, tmp_path: Path) -> None:
    _, cert_path, _ = certificates
    other_key = tmp_path / "other.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    result = _run_cli("--port", "0", "--ssl-cert-path", str(cert_path),
                      "--ssl-key-path", str(other_key))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_encrypted_key_is_one_line_not_a_password_prompt(certificates, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    _, cert_path, key_path = certificates
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    result = subprocess.run(
        [sys.executable, "-m", "qactuar", "apps.basic:app", "--port", "0",
         "--ssl-cert-path", str(cert_path), "--ssl-key-path", str(encrypted)],
        capture_output=True, text=True, cwd=TESTS_DIR, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "encrypted key" in lines[0], result.stderr
    assert "pass phrase" not in result.stdout + result.stderr


def test_http2_over_alpn_and_prior_knowledge(start_server, certificates) -> None:
    """The HTTP/2 smoke test each process model runs: ALPN h2 over TLS, h2c in the clear."""
    from h2_client import H2Client

    ca, cert_path, key_path = certificates
    tls = start_server("apps.basic:app", "--ssl-cert-path", str(cert_path),
                       "--ssl-key-path", str(key_path))
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        with H2Client(tls.host, tls.port, tls=context) as h2c:
            first, second = h2c.request("/echo", "POST", b"over h2"), h2c.request("/hello")
            assert h2c.response(first).body == b"over h2"
            assert h2c.response(second).body == b"Hello, world!"
    clear = start_server("apps.basic:app")
    with H2Client(clear.host, clear.port) as h2c:
        assert h2c.get("/hello").body == b"Hello, world!"
        h2c.close()
    assert "Traceback" not in tls.output + clear.output


def test_http2_only_over_tls_offers_h2_alone(start_server, certificates) -> None:
    """HTTP2 = only: ALPN offers h2 alone, and a client that speaks HTTP/1.1 anyway gets
    GOAWAY with PROTOCOL_ERROR (RFC 9113 3.4), under every model."""
    import h2.errors
    from hyperframe.frame import GoAwayFrame

    from h2_client import H2Client, parse_frames

    ca, cert_path, key_path = certificates
    server = start_server("apps.basic:app", "--ssl-cert-path", str(cert_path),
                          "--ssl-key-path", str(key_path), "--http2", "only")
    with ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        with H2Client(server.host, server.port, tls=context) as h2c:
            assert h2c.get("/hello").body == b"Hello, world!"
        http1_only = ssl.create_default_context(cafile=ca_file)
        http1_only.set_alpn_protocols(["http/1.1"])
        data = b""
        with socket.create_connection((server.host, server.port), timeout=5) as raw, \
                http1_only.wrap_socket(raw, server_hostname=server.host) as sock:
            assert sock.selected_alpn_protocol() is None  # nothing in common with h2
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except (ConnectionResetError, ssl.SSLError):
                pass
    goaways = [frame for frame in parse_frames(data) if isinstance(frame, GoAwayFrame)]
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert "Traceback" not in server.output

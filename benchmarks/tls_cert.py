"""The self-signed certificate of the TLS scenarios, made afresh once per run.

A private CA and a server certificate for 127.0.0.1 (trustme, the tests' own
certificate maker), written under benchmarks/build/tls/: cert.pem (the chain),
key.pem (PKCS#8, the one key format every server here reads: granian takes no
other) and ca.pem, which the verification client trusts.  Every server of a
run serves the same files.  This module must not start processes.
"""

from __future__ import annotations

import ssl
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "build" / "tls"
CERT = FOLDER / "cert.pem"
KEY = FOLDER / "key.pem"
CA = FOLDER / "ca.pem"
_made = False  # made in this run already


def ensure() -> None:
    """Write a fresh CA, certificate and key the first time a run needs them."""
    global _made
    if _made:
        return
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    FOLDER.mkdir(parents=True, exist_ok=True)
    KEY.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    CERT.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    ca.cert_pem.write_to_path(str(CA))
    _made = True


def client_context(alpn: str = "http/1.1") -> ssl.SSLContext:
    """A client context that trusts the run's CA and offers (only) the ALPN `alpn`."""
    context = ssl.create_default_context(cafile=str(CA))
    context.set_alpn_protocols([alpn])
    return context

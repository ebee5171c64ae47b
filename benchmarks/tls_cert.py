"""The self-signed certificate of the TLS scenarios, made afresh once per run.

A private CA and a server certificate for 127.0.0.1 (trustme, the tests' own
certificate maker), written to a folder of this process's own under
benchmarks/build/tls/ (removed when the process ends): cert.pem (the chain),
key.pem (PKCS#8, the one key format every server here reads: granian takes no
other) and ca.pem, which the verification client trusts.  Every server of a
run serves the same files.  The folder is the process's own because several
runs (CI's concurrent test suites) must not overwrite each other's CA between
a server's start and its verification.  This module must not start processes.
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import tempfile
from pathlib import Path

BUILD = Path(__file__).resolve().parent / "build" / "tls"
# Set by ensure(): the files of this process's certificate.
CERT: Path
KEY: Path
CA: Path
_made = False  # made in this run already


def ensure() -> None:
    """Write a fresh CA, certificate and key the first time a run needs them."""
    global _made, CERT, KEY, CA
    if _made:
        return
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    BUILD.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=BUILD))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    CERT, KEY, CA = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
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

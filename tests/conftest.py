"""Fixtures: a private CA (trustme) and the certificates the TLS tests need."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp


@dataclass
class Cert:
    cert: Path
    key: Path

    def args(self, *extra: str) -> list[str]:
        return ["--certificate", str(self.cert), str(self.key), *extra]


@dataclass
class PKI:
    ca: trustme.CA
    ca_pem: Path
    directory: Path

    def issue(self, name: str, *names: str, ecdsa: bool = False, not_after: dt.datetime | None = None) -> Cert:
        kind = trustme.KeyType.ECDSA if ecdsa else trustme.KeyType.RSA
        leaf = self.ca.issue_cert(name, *names, key_type=kind, not_after=not_after)
        stem = self.directory / f"{name.replace('*', 'star')}-{'ecdsa' if ecdsa else 'rsa'}-{os.urandom(3).hex()}"
        cert, key = Path(f"{stem}.pem"), Path(f"{stem}.key")
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert_obj(cert, key)

    def ocsp_response(self, cert: Cert, *, status: str = "good", next_update: dt.timedelta = dt.timedelta(days=1),
                      this_update: dt.timedelta = dt.timedelta(minutes=-1)) -> Path:
        """A real OCSP response for ``cert``, signed by the CA, written as DER."""
        leaf = x509.load_pem_x509_certificate(cert.cert.read_bytes())
        issuer = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), password=None)
        now = dt.datetime.now(dt.timezone.utc)
        cert_status = ocsp.OCSPCertStatus.GOOD if status == "good" else ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=leaf, issuer=issuer, algorithm=hashes.SHA1(), cert_status=cert_status,
            this_update=now + this_update, next_update=now + next_update,
            revocation_time=now if status != "good" else None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        response = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        path = cert.cert.with_suffix(f".{os.urandom(3).hex()}.ocsp.der")
        path.write_bytes(response.public_bytes(serialization.Encoding.DER))
        return path


def cert_obj(cert: Path, key: Path) -> Cert:
    return Cert(cert, key)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return PKI(ca, ca_pem, directory)


@pytest.fixture(scope="session")
def site_rsa(pki: PKI) -> Cert:
    return pki.issue("a.test", "localhost", "127.0.0.1")


@pytest.fixture(scope="session")
def site_ecdsa(pki: PKI) -> Cert:
    return pki.issue("a.test", "localhost", "127.0.0.1", ecdsa=True)


@pytest.fixture(scope="session")
def other_rsa(pki: PKI) -> Cert:
    return pki.issue("b.test")


@pytest.fixture(scope="session")
def wildcard_rsa(pki: PKI) -> Cert:
    return pki.issue("*.w.test")


@pytest.fixture()
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"

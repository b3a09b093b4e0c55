"""Make the files examples/config-example.yaml refers to: certificates, an OCSP staple, ticket keys.

    python examples/make_certs.py [DIRECTORY]      (what `make example-certs` runs)

Writes, under DIRECTORY (default: this file's directory):

* ``certs/ca.pem``: a private CA, valid 10 years (``curl --cacert certs/ca.pem``);
* ``certs/site-rsa.{pem,key}`` and ``certs/site-ecdsa.{pem,key}``: the same names
  (``example.com``, ``www.example.com``, ``static.*`` hosts via ``*.example.com``), RSA-2048 and
  ECDSA P-256, leaf then CA in each chain, valid 90 days;
* ``certs/api.{pem,key}``: ``api.example.net``, chosen by SNI;
* ``certs/site-rsa.ocsp.der``: a signed "good" OCSP response for the RSA certificate, valid 7
  days (run again to refresh it; Albatross stops stapling an expired one);
* ``state/ticket-keys``: a session-ticket key file (``albatross tls-keys rotate`` format);
* ``logs/``: where the example's access and connection logs go.

Existing certificates are replaced; an existing ticket-key file is rotated, not replaced.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from albatross.tls import rotate_key_file

NOW = dt.datetime.now(dt.timezone.utc)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Albatross example"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: str, key: object) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Albatross example CA")).issuer_name(_name("Albatross example CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str], *,
              ecdsa: bool) -> tuple[x509.Certificate, object]:
    key = ec.generate_private_key(ec.SECP256R1()) if ecdsa else rsa.generate_private_key(65537, 2048)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def ocsp_good(leaf: x509.Certificate, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    response = (ocsp.OCSPResponseBuilder()
                .add_response(cert=leaf, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
                              this_update=NOW - dt.timedelta(minutes=1), next_update=NOW + dt.timedelta(days=7),
                              revocation_time=None, revocation_reason=None)
                .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
                .sign(ca_key, hashes.SHA256()))
    return response.public_bytes(serialization.Encoding.DER)


def main(directory: str) -> None:
    certs, state, logs = (os.path.join(directory, d) for d in ("certs", "state", "logs"))
    for d in (certs, state, logs):
        os.makedirs(d, exist_ok=True)
    ca, ca_key = make_ca()
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    with open(os.path.join(certs, "ca.pem"), "wb") as f:
        f.write(ca_pem)
    site = ["example.com", "www.example.com", "*.example.com"]
    for stem, names, ecdsa in (("site-rsa", site, False), ("site-ecdsa", site, True), ("api", ["api.example.net"], False)):
        cert, key = make_leaf(ca, ca_key, names, ecdsa=ecdsa)
        with open(os.path.join(certs, f"{stem}.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
        _write_key(os.path.join(certs, f"{stem}.key"), key)
        if stem == "site-rsa":
            with open(os.path.join(certs, "site-rsa.ocsp.der"), "wb") as f:
                f.write(ocsp_good(cert, ca, ca_key))
    rotate_key_file(os.path.join(state, "ticket-keys"))
    print(f"example certificates, OCSP staple and ticket keys written under {os.path.abspath(directory)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))

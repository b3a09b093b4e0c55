"""Certificates: load and check a PEM chain and its key, match SNI names, make self-signed pairs.

Everything here runs at startup or reload, never per handshake. A certificate that cannot be
used (unreadable, not PEM, key does not match, expired, no usable name) is a
:class:`~albatross.errors.ConfigError` that names the file, before OpenSSL ever sees it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from albatross.errors import ConfigError

RSA, ECDSA = "RSA", "ECDSA"


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """What the configuration says about one certificate (paths only)."""

    certificate: str
    private_key: str
    ocsp_staple: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedCertificate:
    """A certificate checked against its key, with what SNI selection needs to know."""

    spec: CertificateSpec
    leaf: x509.Certificate = field(repr=False)
    key_type: str  # RSA or ECDSA
    key_bits: int
    names: tuple[str, ...]  # DNS names, lower case (wildcards kept as "*.example.com")
    not_after: dt.datetime

    @property
    def rank(self) -> tuple[int, dt.datetime]:
        """ALB's tie-break among certificates of one key type: larger key, then later expiry."""
        return (self.key_bits, self.not_after)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read {what}: {exc.strerror or exc}") from None


def _names(leaf: x509.Certificate) -> tuple[str, ...]:
    names: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        names = [str(a.value).lower() for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(dict.fromkeys(names))


def load_certificate(spec: CertificateSpec, *, now: dt.datetime | None = None) -> LoadedCertificate:
    """Read and check one certificate chain and its private key."""
    pem = _read(spec.certificate, "certificate")
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(spec.certificate, f"not a PEM certificate chain ({exc})") from None
    leaf = chain[0]
    key_pem = _read(spec.private_key, "private key")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(spec.private_key, f"not an unencrypted PEM private key ({exc})") from None
    pub = leaf.public_key()
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(spec.private_key, "only RSA and ECDSA keys are supported (as ALB)")
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ConfigError(spec.private_key, f"private key does not match certificate {spec.certificate}")
    now = now or dt.datetime.now(dt.timezone.utc)
    not_after = leaf.not_valid_after_utc
    if not_after <= now:
        raise ConfigError(spec.certificate, f"certificate expired on {not_after:%Y-%m-%d %H:%M:%S} UTC")
    if leaf.not_valid_before_utc > now:
        raise ConfigError(spec.certificate, f"certificate not valid before {leaf.not_valid_before_utc:%Y-%m-%d} UTC")
    key_type = RSA if isinstance(key, rsa.RSAPrivateKey) else ECDSA
    return LoadedCertificate(spec, leaf, key_type, key.key_size, _names(leaf), not_after)


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching of one certificate name against an SNI host name (both lower case).

    A wildcard covers exactly one leftmost label: ``*.example.com`` matches ``a.example.com``,
    not ``example.com`` nor ``a.b.example.com``.
    """
    if not pattern.startswith("*."):
        return pattern == host
    head, sep, rest = host.partition(".")
    return bool(sep) and bool(head) and rest == pattern[2:]


def self_signed(
    directory: str, *, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"), key_type: str = ECDSA
) -> CertificateSpec:
    """Create (once) a self-signed certificate for ``names`` under ``directory``.

    Existing files are reused while they are valid for at least another day; the demo keeps
    its certificate across runs so browsers and pinned clients keep trusting it.
    """
    stem = os.path.join(directory, f"demo-{key_type.lower()}")
    spec = CertificateSpec(f"{stem}.pem", f"{stem}.key")
    if os.path.exists(spec.certificate) and os.path.exists(spec.private_key):
        try:
            loaded = load_certificate(spec)
            if loaded.not_after - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=1):
                return spec
        except ConfigError:
            pass
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = rsa.generate_private_key(65537, 2048) if key_type == RSA else ec.generate_private_key(ec.SECP256R1())
    write_certificate(spec, key, _self_signed_cert(key, names))
    return spec


def _self_signed_cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, names: tuple[str, ...]) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Albatross demo")])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def write_certificate(spec: CertificateSpec, key: object, cert: x509.Certificate) -> None:
    """Write a key (mode 0600) and its certificate as PEM."""
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    fd = os.open(spec.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(spec.certificate, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))

"""What the probe says about the server's certificate and its OCSP staple (parsed with
``cryptography``; nothing is verified: a probe describes, it does not trust)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp

__all__ = ["CertificateSummary", "OcspSummary", "describe_certificate", "describe_ocsp", "key_type"]


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName DNS names and IP addresses
    key_type: str  # "ECDSA P-256", "RSA 2048", ...
    not_after: str  # ISO 8601, UTC
    self_signed: bool
    serial: int


@dataclass(frozen=True, slots=True)
class OcspSummary:
    response_status: str  # "successful", "unauthorized", ...
    cert_status: str | None  # "good", "revoked", "unknown"
    this_update: str | None
    next_update: str | None
    serial: int | None  # the certificate the response is about


def key_type(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384", "secp521r1": "ECDSA P-521"}.get(
            key.curve.name, f"ECDSA {key.curve.name}")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName)) + tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))


def _iso(when: dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None


def describe_certificate(der: bytes) -> CertificateSummary:
    cert = x509.load_der_x509_certificate(der)
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=_names(cert),
        key_type=key_type(cert),
        not_after=_iso(cert.not_valid_after_utc) or "",
        self_signed=cert.issuer == cert.subject,
        serial=cert.serial_number,
    )


def describe_ocsp(der: bytes) -> OcspSummary:
    """Raises ValueError when the staple is not an OCSP response at all."""
    response = ocsp.load_der_ocsp_response(der)
    status = response.response_status.name.lower()
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return OcspSummary(status, None, None, None, None)
    return OcspSummary(
        response_status=status,
        cert_status=response.certificate_status.name.lower(),
        this_update=_iso(response.this_update_utc),
        next_update=_iso(response.next_update_utc),
        serial=response.serial_number,
    )

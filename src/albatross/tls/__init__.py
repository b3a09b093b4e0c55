"""Albatross's TLS front end on its own OpenSSL 3 binding (see ``connection`` and ``context``)."""

from albatross.tls.certs import CertificateSpec, self_signed
from albatross.tls.connection import (
    ApplicationData,
    CloseNotifyReceived,
    HandshakeCompleted,
    HandshakeInfo,
    PeerClosedError,
    PlaintextHTTPError,
    TLSConnection,
    TLSError,
)
from albatross.tls.context import ServerContext, TLSSettings, open_key_log
from albatross.tls.policies import DEFAULT_POLICY, POLICIES, get_policy
from albatross.tls.ticketkeys import TicketKeyRing, rotate_key_file

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "ApplicationData",
    "CertificateSpec",
    "CloseNotifyReceived",
    "HandshakeCompleted",
    "HandshakeInfo",
    "PeerClosedError",
    "PlaintextHTTPError",
    "ServerContext",
    "TLSConnection",
    "TLSError",
    "TLSSettings",
    "TicketKeyRing",
    "get_policy",
    "open_key_log",
    "rotate_key_file",
    "self_signed",
]

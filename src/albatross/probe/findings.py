"""What the probe found: one plain dataclass per check, each able to say itself as table rows.

A :class:`Row` is what the table prints (check, result, detail) plus ``data``, the same facts
as machine-readable values for ``--json``. The findings judge nothing beyond the facts they
hold; comparisons with ALB belong in ``docs/probe.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from albatross.http2.client import SETTING_NAMES
from albatross.probe.pki import CertificateSummary, OcspSummary

__all__ = [
    "Alpn", "AlpnOffer", "Certificate", "FalseStart", "Finding", "Handshake", "Http1", "Http2", "Npn", "OcspStaple",
    "Renegotiation", "Resumption", "Row", "Ticket", "VersionSupport",
]


@dataclass(frozen=True, slots=True)
class Row:
    check: str
    result: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Finding(Protocol):
    def rows(self) -> list[Row]: ...


@dataclass(frozen=True, slots=True)
class Handshake:
    """The first connection: what a modern client (TLS up to 1.3, ALPN h2, http/1.1) gets."""

    version: str
    cipher: str
    group: str | None
    alpn: str | None
    sni: str | None

    def rows(self) -> list[Row]:
        detail = f"ALPN {self.alpn or 'none'}, key exchange {self.group or 'none'}, SNI {self.sni or 'none'}"
        return [Row("handshake", f"{self.version} {self.cipher}", detail, asdict(self))]


@dataclass(frozen=True, slots=True)
class Certificate:
    """The leaf certificate for the SNI given, and what a client that cannot verify ECDSA gets."""

    sni: str | None
    served: CertificateSummary
    rsa_only: CertificateSummary | None
    rsa_only_error: str | None

    def rows(self) -> list[Row]:
        s = self.served
        origin = "self-signed" if s.self_signed else f"issuer {s.issuer}"
        detail = (f"{s.subject}; SAN {', '.join(s.names) or 'none'}; {origin}; expires {s.not_after[:10]}; "
                  f"SNI {self.sni or 'none'}")
        rows = [Row("certificate", s.key_type, detail, {"sni": self.sni, **asdict(s)})]
        if self.rsa_only is not None:
            same = self.rsa_only.serial == s.serial
            other = "the same certificate" if same else f"another certificate: {self.rsa_only.subject}"
            rows.append(Row("certificate, RSA-only client", self.rsa_only.key_type, other,
                            {"same_certificate": same, **asdict(self.rsa_only)}))
        else:
            rows.append(Row("certificate, RSA-only client", "handshake failed", self.rsa_only_error or "",
                            {"error": self.rsa_only_error}))
        return rows


@dataclass(frozen=True, slots=True)
class AlpnOffer:
    offered: tuple[str, ...]
    selected: str | None
    version: str | None
    error: str | None = None

    def row(self) -> Row:
        label = f"ALPN {','.join(self.offered)}"
        if self.error is not None:
            return Row(label, "handshake failed", self.error, asdict(self))
        if self.selected is None:
            return Row(label, "none", f"no ALPN in the server's answer ({self.version})", asdict(self))
        return Row(label, self.selected, f"server chose {self.selected} ({self.version})", asdict(self))


@dataclass(frozen=True, slots=True)
class Alpn:
    offers: tuple[AlpnOffer, ...]

    def preference(self) -> tuple[str, str]:
        chosen = {o.offered: o.selected for o in self.offers}
        a, b = chosen.get(("http/1.1", "h2")), chosen.get(("h2", "http/1.1"))
        if a == b == "h2":
            return "h2", "h2 chosen over http/1.1 whatever the client's order (server preference)"
        if a == b and a is not None:
            return a, f"{a} chosen whatever the client's order"
        if (a, b) == ("http/1.1", "h2"):
            return "client's order", "the server takes the client's first choice"
        if a is None and b is None:
            return "none", "no protocol negotiated by ALPN"
        return f"{a or 'none'} / {b or 'none'}", "depends on the client's order"

    def rows(self) -> list[Row]:
        result, detail = self.preference()
        return [o.row() for o in self.offers] + [Row("ALPN preference", result, detail, {"preferred": result})]


@dataclass(frozen=True, slots=True)
class Npn:
    """NPN on TLS 1.2 with no ALPN offered; the client asks for h2 if the server lists it."""

    offered: tuple[str, ...]
    advertised: tuple[str, ...] | None
    negotiated: str | None
    version: str | None
    error: str | None = None

    def rows(self) -> list[Row]:
        data = asdict(self)
        if self.error is not None:
            return [Row("NPN advertised", "handshake failed", self.error, data),
                    Row("NPN negotiated", "none", self.error, data)]
        where = f"{self.version}, NPN offered without ALPN"
        if self.advertised is None:
            return [Row("NPN advertised", "not advertised", where, data),
                    Row("NPN negotiated", "none", "the server sent no NPN extension", data)]
        listed = ", ".join(self.advertised) or "(empty list)"
        if self.negotiated in self.advertised:
            how = f"client selected {self.negotiated} from the server's list"
        else:
            how = f"{self.negotiated} is not on the server's list: NPN's rule, the client's first choice"
        return [Row("NPN advertised", listed, where, data), Row("NPN negotiated", self.negotiated or "none", how, data)]


@dataclass(frozen=True, slots=True)
class Http1:
    """``HEAD`` over HTTP/1.1 on a connection without ALPN or NPN."""

    status_line: str | None
    connection: str | None
    server: str | None
    error: str | None = None

    def rows(self) -> list[Row]:
        if self.error is not None or not self.status_line:
            return [Row("HTTP/1.1, no ALPN or NPN", "failed", self.error or "no response", asdict(self))]
        detail = f"Connection: {self.connection or '(none)'}; server: {self.server or '(none)'}"
        return [Row("HTTP/1.1, no ALPN or NPN", self.status_line, detail, asdict(self))]


_DEFAULTS = {  # RFC 9113 section 6.5.2: what applies when a setting is not sent
    "HEADER_TABLE_SIZE": "4096",
    "MAX_CONCURRENT_STREAMS": "unlimited",
    "INITIAL_WINDOW_SIZE": "65535",
    "MAX_FRAME_SIZE": "16384",
    "MAX_HEADER_LIST_SIZE": "unlimited",
}


@dataclass(frozen=True, slots=True)
class Http2:
    """ALPN h2 alone, the client preface and SETTINGS, then ``HEAD path``."""

    path: str
    protocol: str | None  # what ALPN chose
    settings: tuple[tuple[int, int], ...] | None
    status: int | None
    server: str | None
    error: str | None = None

    def rows(self) -> list[Row]:
        if self.protocol != "h2":
            reason = self.error or f"the server chose {self.protocol or 'no protocol'} when offered only h2"
            return [Row("HTTP/2", "not negotiated", reason, asdict(self))]
        return self._setting_rows() + [self._request_row()]

    def _setting_rows(self) -> list[Row]:
        if self.settings is None:
            return [Row("HTTP/2 SETTINGS", "not received", self.error or "", asdict(self))]
        sent = {SETTING_NAMES.get(k, f"0x{k:x}"): v for k, v in self.settings}
        rows = []
        for name, default in _DEFAULTS.items():
            value = sent.pop(name, None)
            shown = str(value) if value is not None else "not sent"
            rows.append(Row(f"HTTP/2 {name}", shown, "" if value is not None else f"default {default}",
                            {"setting": name, "value": value}))
        for name, value in sent.items():  # ENABLE_PUSH and anything else the server sent
            rows.append(Row(f"HTTP/2 {name}", str(value), "", {"setting": name, "value": value}))
        return rows

    def _request_row(self) -> Row:
        data = {"path": self.path, "status": self.status, "server": self.server, "error": self.error}
        if self.status is None:
            return Row(f"HTTP/2 HEAD {self.path}", "no response", self.error or "", data)
        return Row(f"HTTP/2 HEAD {self.path}", str(self.status), f"server: {self.server or '(none)'}", data)


@dataclass(frozen=True, slots=True)
class OcspStaple:
    """``status_request`` on the first connection: the stapled response, if any."""

    present: bool
    response: OcspSummary | None
    for_served_certificate: bool | None
    error: str | None = None

    def rows(self) -> list[Row]:
        data = asdict(self)
        if not self.present:
            return [Row("OCSP staple", "absent", "status requested; no OCSP response sent", data)]
        r = self.response
        if r is None:
            return [Row("OCSP staple", "present", f"unreadable: {self.error}", data)]
        parts = [f"response {r.response_status}"]
        if r.cert_status is not None:
            parts.append(f"cert status {r.cert_status}")
            parts.append(f"next update {r.next_update or 'none'}")
            parts.append("for the served certificate" if self.for_served_certificate else "for another certificate")
        return [Row("OCSP staple", "present", ", ".join(parts), data)]


@dataclass(frozen=True, slots=True)
class Renegotiation:
    """RFC 5746 support on TLS 1.2, then a client-initiated renegotiation on that connection."""

    version: str | None
    secure: bool | None
    outcome: str  # refused, accepted, no answer, not tried
    how: str

    def rows(self) -> list[Row]:
        data = asdict(self)
        if self.secure is None:
            secure = Row("secure renegotiation (RFC 5746)", "unknown", self.how, data)
        else:
            secure = Row("secure renegotiation (RFC 5746)", "advertised" if self.secure else "not advertised",
                         f"renegotiation_info {'answered' if self.secure else 'not answered'} ({self.version})", data)
        return [secure, Row("client renegotiation", self.outcome, self.how, data)]


@dataclass(frozen=True, slots=True)
class VersionSupport:
    label: str
    accepted: bool | None  # None: could not tell (network trouble)
    cipher: str | None
    reason: str | None = None

    def rows(self) -> list[Row]:
        if self.accepted:
            return [Row(self.label, "accepted", f"cipher {self.cipher}", asdict(self))]
        return [Row(self.label, "refused" if self.accepted is False else "error", self.reason or "", asdict(self))]


@dataclass(frozen=True, slots=True)
class Ticket:
    """Whether a TLS 1.2 full handshake ends with a NewSessionTicket, and its lifetime hint."""

    issued: bool
    lifetime_hint: int | None
    length: int
    error: str | None = None

    def rows(self) -> list[Row]:
        if self.error is not None:
            return [Row("session ticket, TLS 1.2", "error", self.error, asdict(self))]
        if not self.issued:
            return [Row("session ticket, TLS 1.2", "none", "no NewSessionTicket", asdict(self))]
        return [Row("session ticket, TLS 1.2", f"issued, hint {self.lifetime_hint} s",
                    f"{self.length}-byte ticket, lifetime hint {self.lifetime_hint} s", asdict(self))]


@dataclass(frozen=True, slots=True)
class Resumption:
    kind: str  # "TLS 1.2 ticket", "TLS 1.2 session ID", "TLS 1.3"
    reused: bool | None  # None: not tried
    detail: str

    def rows(self) -> list[Row]:
        result = {True: "reused", False: "not reused", None: "not tried"}[self.reused]
        return [Row(f"resumption, {self.kind}", result, self.detail, asdict(self))]


@dataclass(frozen=True, slots=True)
class FalseStart:
    """Whether a TLS 1.2 client may send data before the server's Finished (RFC 7918), by the
    browsers' stricter rule: a protocol negotiated by ALPN or NPN, and an ECDHE or DHE key
    exchange with a GCM or ChaCha20-Poly1305 cipher."""

    met: bool
    reasons: tuple[str, ...]

    def rows(self) -> list[Row]:
        return [Row("False Start preconditions", "yes" if self.met else "no", "; ".join(self.reasons), asdict(self))]

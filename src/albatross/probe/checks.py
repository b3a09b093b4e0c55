"""The checks of the seed report, run against any HTTPS server.

Each check opens its own connections (about twenty in all, one at a time) through a
:class:`~albatross.probe.client.Dialer` and returns a finding. Only the first handshake is
allowed to stop the probe (:class:`~albatross.probe.client.ProbeError`); any later failure,
network or TLS, becomes the result of the check it happened in.

Ways of connecting (one client ``SSL_CTX`` each):

* ``BROAD``: TLS 1.0 to 1.3, OpenSSL's DEFAULT ciphers at ``@SECLEVEL=0``: whatever a server
  chooses, the probe can connect and say what it was (it never refuses a weak server);
* ``TLS12`` (with or without tickets, with NPN) for the TLS 1.2 extensions: tickets and their
  hint, session IDs, NPN, renegotiation, False Start;
* one per protocol version, and ``SEED_2018``: TLS 1.0 with the cipher suites the seed's 2018
  client (OpenSSL 0.9.8) offered, none of them ECDHE.
"""

from __future__ import annotations

from dataclasses import dataclass

from albatross import __version__
from albatross.http2.client import H2ClientConnection
from albatross.http2.errors import H2Error
from albatross.http2.events import ConnectionTerminated, ResponseReceived, SettingsReceived, StreamClosed
from albatross.probe.client import Connection, Dialer, HandshakeFailed, ProbeError, Target
from albatross.probe.findings import (
    Alpn,
    AlpnOffer,
    Certificate,
    FalseStart,
    Finding,
    Handshake,
    Http1,
    Http2,
    Npn,
    OcspStaple,
    Renegotiation,
    Resumption,
    Row,
    Ticket,
    VersionSupport,
)
from albatross.probe.pki import describe_certificate, describe_ocsp
from albatross.tls.client import CipherInfo, ClientSession, ClientSettings
from albatross.tls.connection import HandshakeInfo, PeerClosedError, TLSError

__all__ = ["SEED_2018_CIPHERS", "Findings", "run_checks"]

USER_AGENT = f"albatross-probe/{__version__}"
BROAD = ClientSettings(min_version="TLSv1")
TLS12 = ClientSettings(min_version="TLSv1", max_version="TLSv1.2")
TLS12_NO_TICKET = ClientSettings(min_version="TLSv1", max_version="TLSv1.2", tickets=False)
NPN_OFFER = ("h2", "http/1.1")
TLS12_NPN = ClientSettings(min_version="TLSv1", max_version="TLSv1.2", npn=NPN_OFFER)
TLS13 = ClientSettings(min_version="TLSv1.3")
VERSIONS = {
    "TLS 1.0": ClientSettings("TLSv1", "TLSv1"),
    "TLS 1.1": ClientSettings("TLSv1.1", "TLSv1.1"),
    "TLS 1.2": ClientSettings("TLSv1.2", "TLSv1.2"),
    "TLS 1.3": TLS13,
}
# The seed's client (OpenSSL 0.9.8 on macOS) in the order of its ClientHello; names OpenSSL 3
# no longer has (DSS, SEED, RC4, single DES) are skipped when the hello is built.
SEED_2018_CIPHERS = ":".join((
    "DHE-RSA-AES256-SHA", "DHE-DSS-AES256-SHA", "AES256-SHA", "EDH-RSA-DES-CBC3-SHA", "EDH-DSS-DES-CBC3-SHA",
    "DES-CBC3-SHA", "DHE-RSA-AES128-SHA", "DHE-DSS-AES128-SHA", "AES128-SHA", "DHE-RSA-SEED-SHA",
    "DHE-DSS-SEED-SHA", "SEED-SHA", "RC4-SHA", "RC4-MD5", "EDH-RSA-DES-CBC-SHA", "EDH-DSS-DES-CBC-SHA",
    "DES-CBC-SHA", "@SECLEVEL=0",
))
SEED_2018 = ClientSettings("TLSv1", "TLSv1", ciphers=SEED_2018_CIPHERS)
ALPN_OFFERS = (("h2",), ("http/1.1",), ("http/1.1", "h2"), ("h2", "http/1.1"))
# Signature algorithms of a client that cannot verify ECDSA (it gets the RSA certificate, if any).
RSA_SIGALGS = "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:rsa_pkcs1_sha256:rsa_pkcs1_sha384"
_NETWORK_ERRORS = (HandshakeFailed, TLSError, OSError, H2Error)
_MAX_HEAD = 65536


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything one probe found, in the order the table shows it."""

    target: Target
    items: tuple[Finding, ...]

    def rows(self) -> list[Row]:
        return [row for item in self.items for row in item.rows()]


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, HandshakeFailed):
        return exc.summary
    if isinstance(exc, TimeoutError):
        return str(exc) if exc.args and exc.args[0] != "timed out" else f"no answer within {timeout:g} s"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, TLSError):
        return exc.reason
    return str(exc)


# -- the first connection: reachability, certificate, OCSP ---------------------------------------


def first_connection(dialers: list[Dialer]) -> tuple[Dialer, Connection]:
    """The first handshake, trying each address of the host until one accepts TCP; its failure
    (or every address failing) is the probe's one fatal error."""
    refused: list[str] = []
    for dialer in dialers:
        t = dialer.target
        try:
            return dialer, dialer.connect(BROAD, alpn=("h2", "http/1.1"), ocsp=True)
        except HandshakeFailed as exc:
            raise ProbeError(f"TLS handshake with {t.address} failed: {exc.reason}") from None
        except ConnectionRefusedError:
            refused.append(f"{t.address}: connection refused")
        except OSError as exc:
            refused.append(f"{t.address}: {_reason(exc, t.timeout)}")
    raise ProbeError("; ".join(refused) or "no address to connect to")


def check_first(conn: Connection) -> tuple[Handshake, bytes | None, OcspStaple]:
    with conn:
        info, cipher = _info(conn), conn.tls.cipher
        certificate = conn.tls.peer_certificate()
        handshake = Handshake(info.version, info.cipher, cipher.group, info.alpn, info.server_name)
        return handshake, certificate, _staple(conn.tls.ocsp_response, certificate)


def _staple(der: bytes | None, certificate: bytes | None) -> OcspStaple:
    if der is None:
        return OcspStaple(False, None, None)
    try:
        summary = describe_ocsp(der)
    except ValueError as exc:
        return OcspStaple(True, None, None, f"not an OCSP response ({exc})")
    served = describe_certificate(certificate).serial if certificate else None
    return OcspStaple(True, summary, summary.serial == served if summary.serial is not None else None)


def check_certificate(dialer: Dialer, served_der: bytes) -> Certificate:
    served = describe_certificate(served_der)
    try:
        with dialer.connect(BROAD, sigalgs=RSA_SIGALGS) as conn:
            der = conn.tls.peer_certificate()
        return Certificate(dialer.target.sni, served, describe_certificate(der) if der else None, None)
    except _NETWORK_ERRORS as exc:
        return Certificate(dialer.target.sni, served, None, _reason(exc, dialer.target.timeout))


# -- application protocols -------------------------------------------------------------------------


def check_alpn(dialer: Dialer) -> Alpn:
    offers = []
    for offer in ALPN_OFFERS:
        try:
            with dialer.connect(BROAD, alpn=offer) as conn:
                info = _info(conn)
                offers.append(AlpnOffer(offer, info.alpn, info.version))
        except _NETWORK_ERRORS as exc:
            offers.append(AlpnOffer(offer, None, None, _reason(exc, dialer.target.timeout)))
    return Alpn(tuple(offers))


def check_npn(dialer: Dialer) -> Npn:
    try:
        with dialer.connect(TLS12_NPN) as conn:
            info = _info(conn)
            return Npn(NPN_OFFER, conn.tls.npn_advertised, info.npn, info.version)
    except _NETWORK_ERRORS as exc:
        return Npn(NPN_OFFER, None, None, None, _reason(exc, dialer.target.timeout))


def _info(conn: Connection) -> HandshakeInfo:
    assert conn.tls.info is not None
    return conn.tls.info


def _http1_head(conn: Connection, target: Target) -> bytes:
    """Send ``HEAD path`` over HTTP/1.1 and return the response head (as much as came)."""
    conn.send(f"HEAD {target.path} HTTP/1.1\r\nHost: {target.authority}\r\nUser-Agent: {USER_AGENT}\r\n"
              "Accept: */*\r\n\r\n".encode())
    received = bytearray()

    def on_data(data: bytes) -> bool:
        received.extend(data)
        return b"\r\n\r\n" in received or len(received) > _MAX_HEAD

    conn.read(on_data)
    return bytes(received).split(b"\r\n\r\n", 1)[0]


def check_http1(dialer: Dialer) -> Http1:
    try:
        with dialer.connect(BROAD) as conn:
            head = _http1_head(conn, dialer.target)
    except _NETWORK_ERRORS as exc:
        return Http1(None, None, None, _reason(exc, dialer.target.timeout))
    lines = head.decode("latin-1").split("\r\n")
    fields = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    return Http1(lines[0] or None, fields.get("connection"), fields.get("server"))


def check_http2(dialer: Dialer) -> Http2:
    t = dialer.target
    try:
        with dialer.connect(BROAD, alpn=("h2",)) as conn:
            protocol = _info(conn).alpn
            if protocol != "h2":
                return Http2(t.path, protocol, None, None, None)
            return _h2_exchange(conn, t)
    except _NETWORK_ERRORS as exc:
        return Http2(t.path, None, None, None, None, _reason(exc, t.timeout))


@dataclass(slots=True)
class _H2Exchange:
    """What the server's HTTP/2 frames told us so far about one request."""

    stream_id: int
    settings: tuple[tuple[int, int], ...] | None = None
    response: ResponseReceived | None = None
    ended: str | None = None  # why the stream or session ended without a response

    def note(self, event: object) -> None:
        if isinstance(event, SettingsReceived) and self.settings is None:
            self.settings = event.settings
        elif isinstance(event, ResponseReceived) and event.stream_id == self.stream_id and event.status >= 200:
            self.response = event
        elif isinstance(event, StreamClosed) and event.stream_id == self.stream_id:
            self.ended = self.ended or f"stream closed with error code {event.error_code}"
        elif isinstance(event, ConnectionTerminated):
            self.ended = self.ended or f"GOAWAY with error code {event.error_code}"

    @property
    def done(self) -> bool:
        return self.settings is not None and (self.response is not None or self.ended is not None)


def _h2_exchange(conn: Connection, t: Target) -> Http2:
    """The preface, our SETTINGS and ``HEAD path``; read until the server's SETTINGS and the
    final response (or the stream's end) arrived."""
    h2 = H2ClientConnection()
    error = None
    try:
        x = _H2Exchange(h2.submit_request([
            (b":method", b"HEAD"), (b":scheme", b"https"), (b":authority", t.authority.encode()),
            (b":path", t.path.encode()), (b"user-agent", USER_AGENT.encode())]))
        conn.send(h2.data_to_send())

        def on_data(data: bytes) -> bool:
            for event in h2.receive_data(data):
                x.note(event)
            out = h2.data_to_send()  # SETTINGS ACK, WINDOW_UPDATE; GOAWAY on a protocol error
            if out:
                conn.send(out)
            if not h2.want_read:  # nghttp2 ended the session (GOAWAY, or the server broke the protocol)
                x.ended = x.ended or "the HTTP/2 session ended (GOAWAY or protocol error)"
                return True
            return x.done

        try:
            conn.read(on_data)
        except _NETWORK_ERRORS as exc:
            error = _reason(exc, t.timeout)
        h2.close()
        conn.send(h2.data_to_send())
    finally:
        h2.free()
    if x.response is None:
        return Http2(t.path, "h2", x.settings, None, None, error or x.ended or "the server closed the connection")
    server = dict(x.response.headers).get(b"server")
    return Http2(t.path, "h2", x.settings, x.response.status, server.decode("latin-1") if server else None, error)


# -- protocol versions -----------------------------------------------------------------------------


def check_version(dialer: Dialer, label: str, settings: ClientSettings) -> VersionSupport:
    try:
        with dialer.connect(settings) as conn:
            return VersionSupport(label, True, _info(conn).cipher)
    except HandshakeFailed as exc:
        return VersionSupport(label, False, None, exc.summary)
    except TimeoutError as exc:
        return VersionSupport(label, None, None, _reason(exc, dialer.target.timeout))
    except OSError as exc:  # a reset or close while the hello is refused
        return VersionSupport(label, False, None, _reason(exc, dialer.target.timeout))


# -- sessions ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tls12:
    """The TLS 1.2 connection with ALPN offered: its session, protocol and cipher."""

    info: HandshakeInfo
    cipher: CipherInfo
    session: ClientSession | None


def tls12_connection(dialer: Dialer) -> _Tls12 | str:
    try:
        with dialer.connect(TLS12, alpn=("h2", "http/1.1")) as conn:
            return _Tls12(_info(conn), conn.tls.cipher, conn.tls.session())
    except _NETWORK_ERRORS as exc:
        return _reason(exc, dialer.target.timeout)


def check_ticket(first: _Tls12 | str) -> Ticket:
    if isinstance(first, str):
        return Ticket(False, None, 0, first)
    if first.info.version != "TLSv1.2":
        return Ticket(False, None, 0, f"TLS 1.2 not negotiated ({first.info.version})")
    s = first.session
    if s is None or not s.has_ticket:
        return Ticket(False, None, 0)
    return Ticket(True, s.ticket_lifetime_hint, len(s.ticket))


def _resume(dialer: Dialer, settings: ClientSettings, session: ClientSession,
            alpn: tuple[str, ...] = ()) -> tuple[bool, ClientSession | None]:
    with dialer.connect(settings, session=session, alpn=alpn) as conn:
        return _info(conn).resumed, conn.tls.session()


def check_ticket_resumption(dialer: Dialer, first: _Tls12 | str) -> Resumption:
    kind = "TLS 1.2 ticket"
    if isinstance(first, str) or first.session is None or not first.session.has_ticket:
        return Resumption(kind, None, "no TLS 1.2 ticket to offer")
    try:
        reused, after = _resume(dialer, TLS12, first.session, ("h2", "http/1.1"))
    except _NETWORK_ERRORS as exc:
        return Resumption(kind, False, _reason(exc, dialer.target.timeout))
    if not reused:
        return Resumption(kind, False, "full handshake: the ticket was not accepted")
    if after is not None and after.has_ticket and after.ticket != first.session.ticket:
        return Resumption(kind, True, f"resumed; a new ticket was issued, hint {after.ticket_lifetime_hint} s")
    return Resumption(kind, True, "resumed; the ticket was kept (no new ticket)")


def check_session_id_resumption(dialer: Dialer) -> Resumption:
    kind = "TLS 1.2 session ID"
    try:
        with dialer.connect(TLS12_NO_TICKET) as conn:
            session, version = conn.tls.session(), _info(conn).version
        if version != "TLSv1.2":
            return Resumption(kind, None, f"TLS 1.2 not negotiated ({version})")
        if session is None or not session.session_id:
            return Resumption(kind, False, "tickets off (SSL_OP_NO_TICKET); the server sent no session ID")
        reused, _ = _resume(dialer, TLS12_NO_TICKET, session)
    except _NETWORK_ERRORS as exc:
        return Resumption(kind, False, _reason(exc, dialer.target.timeout))
    how = "tickets off (SSL_OP_NO_TICKET); "
    return Resumption(kind, reused, how + ("resumed from the server's session cache" if reused else
                                          "full handshake: the session ID was not found"))


def check_tls13_resumption(dialer: Dialer, tls13: VersionSupport) -> Resumption:
    kind = "TLS 1.3"
    if not tls13.accepted:
        return Resumption(kind, None, "the server does not do TLS 1.3")
    try:
        with dialer.connect(TLS13) as conn:
            _http1_head(conn, dialer.target)  # the tickets come after the handshake: read them
            session = conn.tls.session()
        if session is None or not session.resumable:
            return Resumption(kind, False, "no session ticket received")
        reused, _ = _resume(dialer, TLS13, session)
    except _NETWORK_ERRORS as exc:
        return Resumption(kind, False, _reason(exc, dialer.target.timeout))
    lifetime = f"ticket lifetime {session.ticket_lifetime_hint} s"
    return Resumption(kind, reused, f"{'resumed (PSK)' if reused else 'full handshake'}; {lifetime}")


# -- renegotiation and False Start -----------------------------------------------------------------


def check_renegotiation(dialer: Dialer) -> Renegotiation:
    try:
        conn = dialer.connect(TLS12)
    except _NETWORK_ERRORS as exc:
        return Renegotiation(None, None, "not tried", _reason(exc, dialer.target.timeout))
    with conn:
        version, secure = _info(conn).version, conn.tls.secure_renegotiation
        if version == "TLSv1.3":
            return Renegotiation(version, None, "not tried", "TLS 1.2 not negotiated")
        if not secure:
            return Renegotiation(version, False, "not tried", "no RFC 5746: insecure renegotiation is not attempted")
        return Renegotiation(version, True, *_renegotiate(conn, dialer.target.timeout))


def _renegotiate(conn: Connection, timeout: float) -> tuple[str, str]:
    """Send a renegotiation ClientHello; (outcome, how) from what the server did."""
    before = len(conn.tls.alerts)
    try:
        conn.tls.renegotiate()
        conn.flush()  # the new ClientHello
        while conn.tls.renegotiation_pending:
            conn.pump()
    except PeerClosedError:
        return "refused", _alerts_since(conn, before) or "connection closed"
    except TLSError as exc:
        return "refused", _alerts_since(conn, before) or exc.reason
    except TimeoutError:
        return "no answer", f"no answer within {timeout:g} s"
    except OSError as exc:
        return "refused", exc.strerror or str(exc)
    return "accepted", "a new handshake completed on the connection"


def _alerts_since(conn: Connection, before: int) -> str:
    return "; ".join(str(a) for a in conn.tls.alerts[before:])


def check_false_start(first: _Tls12 | str, npn: Npn) -> FalseStart:
    if isinstance(first, str):
        return FalseStart(False, (f"no TLS 1.2 connection: {first}",))
    if first.info.version != "TLSv1.2":
        return FalseStart(False, (f"TLS 1.2 not negotiated ({first.info.version}); False Start is a TLS 1.2 idea",))
    reasons, met = [], True
    if first.info.alpn:
        reasons.append(f"ALPN negotiated {first.info.alpn}")
    elif npn.negotiated:
        reasons.append(f"no ALPN, but NPN negotiated {npn.negotiated}")
    else:
        met = False
        reasons.append("neither ALPN nor NPN negotiated a protocol")
    c = first.cipher
    kx = c.key_exchange.removeprefix("Kx")
    fs = kx in ("ECDHE", "DHE")
    aead = c.aead and ("GCM" in c.name or "CHACHA20" in c.name)  # browsers' rule, stricter than RFC 7918
    fs_text = f"forward-secret ({kx})" if fs else f"not forward-secret ({kx} key exchange)"
    aead_text = (f"AEAD ({'GCM' if 'GCM' in c.name else 'ChaCha20-Poly1305'})" if aead
                 else "not one of the AEAD ciphers False Start allows (GCM, ChaCha20-Poly1305)")
    reasons.append(f"{c.name} is {fs_text} and {aead_text}")
    return FalseStart(met and fs and aead, tuple(reasons))


# -- all of them -----------------------------------------------------------------------------------


def run_checks(dialers: list[Dialer]) -> Findings:
    """Every check, in the table's order, against the first of ``dialers`` (one per address of
    the host) that accepts a connection. Raises :class:`ProbeError` if the first handshake fails."""
    dialer, conn = first_connection(dialers)
    handshake, certificate, staple = check_first(conn)
    items: list[Finding] = [handshake]
    if certificate is not None:
        items.append(check_certificate(dialer, certificate))
    npn = check_npn(dialer)
    items += [check_alpn(dialer), npn, check_http1(dialer), check_http2(dialer), staple]
    items.append(check_renegotiation(dialer))
    versions = {label: check_version(dialer, label, settings) for label, settings in VERSIONS.items()}
    items += list(versions.values())
    items.append(check_version(dialer, "TLS 1.0, 2018 client ciphers", SEED_2018))
    tls12 = tls12_connection(dialer)
    items += [check_ticket(tls12), check_ticket_resumption(dialer, tls12), check_session_id_resumption(dialer),
              check_tls13_resumption(dialer, versions["TLS 1.3"]), check_false_start(tls12, npn)]
    return Findings(dialer.target, tuple(items))

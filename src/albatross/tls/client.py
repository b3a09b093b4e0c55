"""The client side of TLS on Albatross's own binding, for ``albatross probe``.

Theory of operation
-------------------
:class:`TLSClientConnection` is the mirror image of the server's
:class:`~albatross.tls.connection.TLSConnection`: a sans-I/O session over two memory BIOs.
:meth:`~TLSClientConnection.start` puts the ClientHello in :meth:`~TLSClientConnection.data_to_send`;
network bytes go in through :meth:`~TLSClientConnection.receive_data`, which returns the same
events as the server side. The caller owns the socket and the clock, and drains
``data_to_send`` after every call (alerts, renegotiation ClientHellos and KeyUpdate replies are
written during reads).

A :class:`ClientContext` is one ``SSL_CTX`` for one way of connecting (protocol range, ciphers,
tickets on or off, NPN offered or not): the probe makes one per variation and keeps it, so a
saved :class:`ClientSession` is offered again through the context that made it.

What the server did is read back after the fact: the negotiated protocol (ALPN or NPN), the NPN
list the server advertised and every alert sent or received (recorded by C callbacks into a
per-connection ``alb_client_state``), the stapled OCSP response, RFC 5746 support, the peer
certificate, the session and its ticket. The probe judges; this module only reports.

Peer certificates are not verified: the probe describes the server, it does not trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

from albatross.tls.binding import OpenSSLError, check, drain_errors, ffi, lib
from albatross.tls.connection import (
    ApplicationData,
    CloseNotifyReceived,
    HandshakeCompleted,
    HandshakeInfo,
    PeerClosedError,
    TLSError,
    TLSEvent,
    handshake_info,
    _describe,
)
from albatross.tls.context import _VERSION_CODES, wire_protocols

__all__ = ["Alert", "CipherInfo", "ClientContext", "ClientSession", "ClientSettings", "TLSClientConnection"]

_VERSION_NAMES = {code: name for name, code in _VERSION_CODES.items()}
_READ_SIZE = 65536
_read_buf = ffi.new("unsigned char[]", _READ_SIZE)
_OUT_SIZE = 65536
_out_buf = ffi.new("unsigned char[]", _OUT_SIZE)
_err = ffi.new("int *")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """One way of connecting. ``ciphers`` is an OpenSSL cipher string for TLS <= 1.2; the
    default admits everything at ``@SECLEVEL=0`` so that a weak server is described rather
    than refused. ``npn`` non-empty offers NPN with that preference order."""

    min_version: str = "TLSv1.2"
    max_version: str = "TLSv1.3"
    ciphers: str = "DEFAULT:@SECLEVEL=0"
    npn: tuple[str, ...] = ()
    tickets: bool = True


@dataclass(frozen=True, slots=True)
class Alert:
    """A TLS alert that crossed the wire: level and description in OpenSSL's words ("warning",
    "no renegotiation"); :attr:`name` is the RFC's ("no_renegotiation")."""

    sent: bool
    level: str
    description: str

    @property
    def name(self) -> str:
        return self.description.lower().replace(" ", "_")

    def __str__(self) -> str:
        return f"{self.level} {self.name} alert {'sent' if self.sent else 'received'}"


@dataclass(frozen=True, slots=True)
class CipherInfo:
    """The negotiated cipher: name, key exchange (OpenSSL's ``Kx*`` short name), AEAD or not,
    and the key-exchange group if there was one."""

    name: str
    key_exchange: str
    aead: bool
    group: str | None


class ClientContext:
    """An ``SSL_CTX`` made with ``TLS_client_method`` for one :class:`ClientSettings`."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        raw = lib.SSL_CTX_new(lib.TLS_client_method())
        if raw == ffi.NULL:
            raise OpenSSLError("SSL_CTX_new", drain_errors())
        self.ctx = ffi.gc(raw, lib.SSL_CTX_free)
        # Legacy servers (no RFC 5746) are still described: the probe reports the missing
        # extension itself instead of refusing to connect.
        options = lib.SSL_OP_LEGACY_SERVER_CONNECT | lib.SSL_OP_NO_COMPRESSION
        if not settings.tickets:
            options |= lib.SSL_OP_NO_TICKET
        lib.SSL_CTX_set_options(self.ctx, options)
        check(lib.SSL_CTX_set_min_proto_version(self.ctx, _VERSION_CODES[settings.min_version]), "set min protocol")
        check(lib.SSL_CTX_set_max_proto_version(self.ctx, _VERSION_CODES[settings.max_version]), "set max protocol")
        check(lib.SSL_CTX_set_cipher_list(self.ctx, settings.ciphers.encode()), f"cipher list {settings.ciphers!r}")
        if settings.npn:
            lib.alb_client_ctx_offer_npn(self.ctx)
        self.npn_wire = wire_protocols(settings.npn)


class ClientSession:
    """A session the server gave us (``SSL_get1_session``), to offer on a later connection."""

    __slots__ = ("_s",)

    def __init__(self, raw: object) -> None:
        self._s = ffi.gc(raw, lib.SSL_SESSION_free)

    @property
    def resumable(self) -> bool:
        return bool(lib.SSL_SESSION_is_resumable(self._s))

    @property
    def has_ticket(self) -> bool:
        return bool(lib.SSL_SESSION_has_ticket(self._s))

    @property
    def ticket_lifetime_hint(self) -> int:
        """Seconds (the TLS 1.2 hint, or TLS 1.3's ticket_lifetime); 0 when no ticket."""
        return int(lib.SSL_SESSION_get_ticket_lifetime_hint(self._s))

    @property
    def ticket(self) -> bytes:
        data = ffi.new("const unsigned char **")
        size = ffi.new("size_t *")
        lib.SSL_SESSION_get0_ticket(self._s, data, size)
        return ffi.buffer(data[0], size[0])[:] if size[0] and data[0] != ffi.NULL else b""

    @property
    def session_id(self) -> bytes:
        size = ffi.new("unsigned int *")
        data = lib.SSL_SESSION_get_id(self._s, size)
        return ffi.buffer(data, size[0])[:] if size[0] else b""

    @property
    def version(self) -> str:
        code = lib.SSL_SESSION_get_protocol_version(self._s)
        return _VERSION_NAMES.get(code, hex(code))


class TLSClientConnection:
    """One client-side TLS session over memory BIOs (see the module docstring)."""

    __slots__ = ("context", "_ssl", "_state", "_rbio", "handshake_done", "info", "peer_closed")

    def __init__(self, context: ClientContext, *, server_name: str | None = None, alpn: tuple[str, ...] = (),
                 session: ClientSession | None = None, request_ocsp: bool = False,
                 sigalgs: str | None = None) -> None:
        self.context = context  # keeps the SSL_CTX alive
        ssl = lib.SSL_new(context.ctx)
        if ssl == ffi.NULL:
            raise TLSError("SSL_new failed", drain_errors(), during_handshake=True)
        self._ssl = ffi.gc(ssl, lib.SSL_free)
        self._state = ffi.new("alb_client_state *")  # read by the C callbacks: lives as long as the SSL
        wire = context.npn_wire
        self._state.npn_want.len = len(wire)
        ffi.memmove(self._state.npn_want.wire, wire, len(wire))
        check(lib.alb_client_attach(ssl, self._state), "attach client state")
        if not lib.alb_ssl_set_fresh_bios(ssl):  # the SSL owns the BIOs from here on
            raise TLSError("BIO_new failed", drain_errors(), during_handshake=True)
        self._rbio = lib.alb_ssl_rbio(ssl)
        lib.SSL_set_connect_state(ssl)
        self._configure(server_name, alpn, session, request_ocsp, sigalgs)
        self.handshake_done = False
        self.info: HandshakeInfo | None = None
        self.peer_closed = False

    def _configure(self, server_name: str | None, alpn: tuple[str, ...], session: ClientSession | None,
                   request_ocsp: bool, sigalgs: str | None) -> None:
        ssl = self._ssl
        if server_name:
            # ASCII names go as given (the idna codec refuses some that servers accept, such as
            # underscores); only international names are converted.
            name = server_name.encode() if server_name.isascii() else server_name.encode("idna")
            check(lib.SSL_set_tlsext_host_name(ssl, name), "set SNI")
        if alpn:
            wire = wire_protocols(alpn)
            if lib.SSL_set_alpn_protos(ssl, wire, len(wire)) != 0:  # 0 is success here
                raise OpenSSLError("set ALPN protocols", drain_errors())
        if request_ocsp:
            check(lib.SSL_set_tlsext_status_type(ssl, lib.TLSEXT_STATUSTYPE_ocsp), "request OCSP status")
        if sigalgs:
            check(lib.SSL_set1_sigalgs_list(ssl, sigalgs.encode()), f"signature algorithms {sigalgs!r}")
        if session is not None:
            check(lib.SSL_set_session(ssl, session._s), "offer session")

    # -- driving -------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the ClientHello (fetch it with :meth:`data_to_send`)."""
        self._handshake_step()

    def receive_data(self, data: bytes) -> list[TLSEvent]:
        """Feed network bytes; returns what happened. Raises :class:`TLSError` on failure."""
        events: list[TLSEvent] = []
        if not self.handshake_done:
            if data:
                lib.BIO_write(self._rbio, data, len(data))
                data = b""
            if not self._handshake_step():
                return events
            events.append(HandshakeCompleted(self.info))  # type: ignore[arg-type]
        plaintext = self._read(data)
        if plaintext:
            events.append(ApplicationData(plaintext))
        if self.peer_closed:
            events.append(CloseNotifyReceived())
        return events

    def _handshake_step(self) -> bool:
        lib.ERR_clear_error()
        rc = lib.SSL_do_handshake(self._ssl)
        if rc != 1:
            err = lib.SSL_get_error(self._ssl, rc)
            if err != lib.SSL_ERROR_WANT_READ:
                raise self._error(err)
            return False
        self.handshake_done = True
        self.info = self._handshake_info()
        return True

    def _read(self, data: bytes) -> bytes:
        chunks = []
        while True:
            n = lib.alb_ssl_feed_read(self._ssl, data, len(data), _read_buf, _READ_SIZE, _err)
            data = b""
            if n:
                chunks.append(ffi.buffer(_read_buf, n)[:])
            err = _err[0]
            if err == lib.SSL_ERROR_NONE:  # the buffer filled up: more is waiting
                continue
            if err == lib.SSL_ERROR_ZERO_RETURN:
                self.peer_closed = True
            elif err != lib.SSL_ERROR_WANT_READ:
                raise self._error(err)
            return b"".join(chunks)

    def _error(self, err: int) -> TLSError:
        records = drain_errors()
        during = not self.handshake_done
        if err == lib.SSL_ERROR_SYSCALL and not records:
            return PeerClosedError("connection closed", during_handshake=during)
        if any(r.matches(lib.ERR_LIB_SSL, lib.SSL_R_UNEXPECTED_EOF_WHILE_READING) for r in records):
            return PeerClosedError("connection closed", records, during_handshake=during)
        return TLSError(_describe(records), records, during_handshake=during)

    def send(self, data: bytes) -> None:
        """Encrypt application data; fetch the records with :meth:`data_to_send`."""
        rc = lib.alb_ssl_write(self._ssl, data, len(data))
        if rc != 1:
            raise self._error(-rc)

    def data_to_send(self) -> bytes:
        """Everything OpenSSL has written for the network since the last call."""
        chunks = []
        while True:
            n = lib.alb_bio_drain(self._ssl, _out_buf, _OUT_SIZE)
            if n:
                chunks.append(ffi.buffer(_out_buf, n)[:])
            if n < _OUT_SIZE:
                return b"".join(chunks)

    def end_of_input(self) -> None:
        """The transport saw EOF: the next read reports it (as :class:`PeerClosedError`)."""
        lib.BIO_set_mem_eof_return(self._rbio, 0)

    def renegotiate(self) -> None:
        """Start a client-initiated renegotiation (TLS <= 1.2): a new ClientHello is written,
        and later reads drive the new handshake. Raises :class:`TLSError` if OpenSSL refuses
        to start one (TLS 1.3, or no RFC 5746 on this connection)."""
        lib.ERR_clear_error()
        if lib.SSL_renegotiate(self._ssl) != 1:
            raise TLSError(_describe(drain_errors()) or "renegotiation not possible", during_handshake=False)
        rc = lib.SSL_do_handshake(self._ssl)
        if rc != 1:
            err = lib.SSL_get_error(self._ssl, rc)
            if err != lib.SSL_ERROR_WANT_READ:
                raise self._error(err)

    @property
    def renegotiation_pending(self) -> bool:
        return bool(lib.SSL_renegotiate_pending(self._ssl))

    def start_shutdown(self) -> None:
        """Queue close_notify (one-way close)."""
        if self.handshake_done:
            lib.ERR_clear_error()
            if lib.SSL_shutdown(self._ssl) < 0:
                drain_errors()

    def free(self) -> None:
        """Free the SSL now (before the state its callbacks point to)."""
        ffi.release(self._ssl)

    # -- what the server did ---------------------------------------------------------------------

    def _handshake_info(self) -> HandshakeInfo:
        return handshake_info(self._ssl)

    @property
    def cipher(self) -> CipherInfo:
        c = lib.SSL_get_current_cipher(self._ssl)
        group = lib.SSL_get_negotiated_group(self._ssl)
        return CipherInfo(
            name=ffi.string(lib.SSL_CIPHER_get_name(c)).decode(),
            key_exchange=_short_name(lib.SSL_CIPHER_get_kx_nid(c)) or "unknown",
            aead=bool(lib.SSL_CIPHER_is_aead(c)),
            group=_short_name(group) if group > 0 else None,
        )

    @property
    def npn_advertised(self) -> tuple[str, ...] | None:
        """The server's NPN list (None: it sent no NPN extension)."""
        st = self._state
        if not st.npn_seen:
            return None
        wire = ffi.buffer(st.npn_offered, st.npn_len)[:]
        names, i = [], 0
        while i < len(wire):
            names.append(wire[i + 1 : i + 1 + wire[i]].decode("ascii", "replace"))
            i += 1 + wire[i]
        return tuple(names)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        st = self._state
        out = []
        for i in range(st.nalerts):
            sent, level, desc = st.alerts[3 * i], st.alerts[3 * i + 1], st.alerts[3 * i + 2]
            value = (level << 8) | desc
            out.append(Alert(bool(sent), ffi.string(lib.SSL_alert_type_string_long(value)).decode(),
                             ffi.string(lib.SSL_alert_desc_string_long(value)).decode()))
        return tuple(out)

    @property
    def ocsp_response(self) -> bytes | None:
        """The stapled OCSP response (DER), if the server sent one."""
        data = ffi.new("const unsigned char **")
        n = lib.SSL_get_tlsext_status_ocsp_resp(self._ssl, data)
        return ffi.buffer(data[0], n)[:] if n > 0 and data[0] != ffi.NULL else None

    @property
    def secure_renegotiation(self) -> bool:
        """The server answered RFC 5746 ``renegotiation_info`` (TLS <= 1.2)."""
        return bool(lib.SSL_get_secure_renegotiation_support(self._ssl))

    def peer_certificate(self) -> bytes | None:
        """The server's leaf certificate, DER."""
        x509 = lib.SSL_get0_peer_certificate(self._ssl)
        if x509 == ffi.NULL:
            return None
        size = lib.i2d_X509(x509, ffi.NULL)
        if size <= 0:
            raise OpenSSLError("i2d_X509", drain_errors())
        buf = ffi.new("unsigned char[]", size)
        check(lib.i2d_X509(x509, ffi.new("unsigned char **", buf)), "i2d_X509")
        return ffi.buffer(buf, size)[:]

    def session(self) -> ClientSession | None:
        """The current session (after TLS 1.3 tickets were read, the one they carry)."""
        raw = lib.SSL_get1_session(self._ssl)
        return ClientSession(raw) if raw != ffi.NULL else None


def _short_name(nid: int) -> str | None:
    name = lib.OBJ_nid2sn(nid)
    return ffi.string(name).decode() if name != ffi.NULL else None

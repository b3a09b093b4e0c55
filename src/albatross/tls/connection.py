"""A sans-I/O server-side TLS connection over two OpenSSL memory BIOs.

Theory of operation
-------------------
Bytes from the network go in with :meth:`TLSConnection.receive_data`, which returns events;
bytes for the network come out of :meth:`TLSConnection.data_to_send`. No sockets, no event
loop, no clock: the caller (``albatross.server``) owns all of that, including timeouts.

With memory BIOs OpenSSL never blocks and never reports WANT_WRITE: the write BIO grows as
needed. It does report WANT_READ, which only ever means "feed me more network bytes". Any
OpenSSL call can produce output (handshake messages, TLS 1.3 tickets after the handshake,
the warning alert that refuses a renegotiation, KeyUpdate replies, fatal alerts), so the
caller drains :meth:`data_to_send` after *every* call, including after an exception.

After the handshake completes, ``receive_data`` goes on reading application data from the
same input in the same call: a False Start client sends its first request right behind its
Finished message, and would wait forever if those bytes sat unread until the next packet.

The error queue is per thread and shared by every connection on the loop: it is cleared
before each call whose result goes to ``SSL_get_error`` and drained after each failure.
Errors are classified by ``(lib, reason)`` codes, never by message text.
"""

from __future__ import annotations

from dataclasses import dataclass

from albatross.tls.binding import ErrorRecord, drain_errors, ffi, lib
from albatross.tls.context import ServerContext

_READ_SIZE = 65536
_read_buf = ffi.new("unsigned char[]", _READ_SIZE)  # one buffer for every connection: one loop thread
_OUT_SIZE = 262144
_out_buf = ffi.new("unsigned char[]", _OUT_SIZE)
_err = ffi.new("int *")
_WANT_READ, _ZERO_RETURN, _NONE = lib.SSL_ERROR_WANT_READ, lib.SSL_ERROR_ZERO_RETURN, lib.SSL_ERROR_NONE


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """What was negotiated; ``alpn`` or ``npn`` names the application protocol, if any."""

    version: str
    cipher: str
    alpn: str | None
    npn: str | None
    server_name: str | None
    resumed: bool
    certificate: str | None = None  # the file of the certificate presented

    @property
    def application_protocol(self) -> str:
        return self.alpn or self.npn or "http/1.1"


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    info: HandshakeInfo


@dataclass(frozen=True, slots=True)
class ApplicationData:
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseNotifyReceived:
    """The peer sent close_notify: it will send nothing more."""


TLSEvent = HandshakeCompleted | ApplicationData | CloseNotifyReceived


class TLSError(Exception):
    """The TLS session failed; ``reason`` is a short, stable description for logs."""

    def __init__(self, reason: str, records: tuple[ErrorRecord, ...] = (), *, during_handshake: bool) -> None:
        self.reason = reason
        self.records = records
        self.during_handshake = during_handshake
        detail = "; ".join(r.text for r in records)
        super().__init__(f"{reason} ({detail})" if detail else reason)


class PlaintextHTTPError(TLSError):
    """A plain HTTP request arrived on the TLS port (the caller may answer it in plain HTTP)."""


class PeerClosedError(TLSError):
    """The transport ended without close_notify (common and harmless after a request)."""


def _describe(records: tuple[ErrorRecord, ...]) -> str:
    for r in records:
        if r.lib == lib.ERR_LIB_SSL:
            reason = lib.ERR_reason_error_string(r.code)
            if reason != ffi.NULL:
                return ffi.string(reason).decode()
    return records[0].text if records else "unknown TLS error"


class TLSConnection:
    """One server-side TLS session."""

    __slots__ = ("context", "_ssl", "_rbio", "_wbio", "handshake_done", "info", "closed", "peer_closed")

    def __init__(self, context: ServerContext) -> None:
        self.context = context  # keeps the SSL_CTX objects and callback handles alive
        ssl = lib.SSL_new(context.default_ctx)
        if ssl == ffi.NULL:
            raise TLSError("SSL_new failed", drain_errors(), during_handshake=True)
        self._ssl = ffi.gc(ssl, lib.SSL_free)
        if not lib.alb_ssl_set_fresh_bios(ssl):  # the SSL owns the BIOs from here on
            raise TLSError("BIO_new failed", drain_errors(), during_handshake=True)
        self._rbio = lib.alb_ssl_rbio(ssl)
        self._wbio = lib.alb_ssl_wbio(ssl)
        lib.SSL_set_accept_state(ssl)
        self.handshake_done = False
        self.info: HandshakeInfo | None = None
        self.closed = False
        self.peer_closed = False

    # -- input ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[TLSEvent]:
        """Feed network bytes; returns what happened. Raises :class:`TLSError` on failure."""
        if data:
            lib.BIO_write(self._rbio, data, len(data))
        events: list[TLSEvent] = []
        if not self.handshake_done:
            lib.ERR_clear_error()
            rc = lib.SSL_do_handshake(self._ssl)
            if rc != 1:
                self._raise_unless_want_read(rc)
                return events
            self.handshake_done = True
            self.info = self._handshake_info()
            events.append(HandshakeCompleted(self.info))
        self._read_application_data(events)
        return events

    def _read_application_data(self, events: list[TLSEvent]) -> None:
        data = self.receive_plaintext(b"")
        if data:
            events.append(ApplicationData(data))
        if self.peer_closed:
            events.append(CloseNotifyReceived())

    def receive_plaintext(self, data: bytes) -> bytes:
        """After the handshake: feed network bytes, get the application data they carried.

        The fast path of :meth:`receive_data` (one call into C, no event objects). A
        close_notify sets :attr:`peer_closed`; a failure raises :class:`TLSError`.
        """
        ssl = self._ssl
        n = lib.alb_ssl_feed_read(ssl, data, len(data), _read_buf, _READ_SIZE, _err)
        out = ffi.buffer(_read_buf, n)[:] if n else b""
        err = _err[0]
        if err == _WANT_READ:
            return out
        if err == _NONE:  # the buffer filled up: more plaintext is waiting
            chunks = [out]
            while err == _NONE:
                n = lib.alb_ssl_feed_read(ssl, b"", 0, _read_buf, _READ_SIZE, _err)
                chunks.append(ffi.buffer(_read_buf, n)[:])
                err = _err[0]
            out = b"".join(chunks)
            if err == _WANT_READ:
                return out
        if err == _ZERO_RETURN:
            self.peer_closed = True
            return out
        raise self._error(err)

    def _raise_unless_want_read(self, rc: int) -> None:
        err = lib.SSL_get_error(self._ssl, rc)
        if err != lib.SSL_ERROR_WANT_READ:
            raise self._error(err)

    def _error(self, err: int) -> TLSError:
        records = drain_errors()
        self.closed = True
        during = not self.handshake_done
        if err == lib.SSL_ERROR_SYSCALL and not records:
            return PeerClosedError("connection closed without close_notify", during_handshake=during)
        for r in records:
            if r.lib != lib.ERR_LIB_SSL:
                continue
            if r.reason in (lib.SSL_R_HTTP_REQUEST, lib.SSL_R_HTTPS_PROXY_REQUEST):
                return PlaintextHTTPError("plain HTTP request on a TLS port", records, during_handshake=during)
            if r.reason == lib.SSL_R_UNEXPECTED_EOF_WHILE_READING:
                return PeerClosedError("connection closed without close_notify", records, during_handshake=during)
        return TLSError(_describe(records), records, during_handshake=during)

    def end_of_input(self) -> None:
        """The transport saw EOF: nothing more will arrive. (Decides nothing by itself.)"""
        lib.BIO_set_mem_eof_return(self._rbio, 0)

    # -- output --------------------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt application data; fetch the records with :meth:`data_to_send`."""
        if self.closed:
            return
        rc = lib.alb_ssl_write(self._ssl, data if type(data) is bytes else ffi.from_buffer(data), len(data))
        if rc != 1:
            raise self._error(-rc)

    def data_to_send(self) -> bytes:
        """Everything OpenSSL has written for the network since the last call."""
        n = lib.alb_bio_drain(self._ssl, _out_buf, _OUT_SIZE)
        if n < _OUT_SIZE:
            return ffi.buffer(_out_buf, n)[:] if n else b""
        chunks = [ffi.buffer(_out_buf, n)[:]]
        while n == _OUT_SIZE:
            n = lib.alb_bio_drain(self._ssl, _out_buf, _OUT_SIZE)
            chunks.append(ffi.buffer(_out_buf, n)[:])
        return b"".join(chunks)

    def start_shutdown(self) -> None:
        """Queue close_notify (one-way close; the caller then closes the transport)."""
        if self.closed or not self.handshake_done:
            self.closed = True
            return
        self.closed = True
        lib.ERR_clear_error()
        if lib.SSL_shutdown(self._ssl) < 0:
            drain_errors()

    # -- inspection ----------------------------------------------------------------------------

    def _handshake_info(self) -> HandshakeInfo:
        presented = lib.SSL_get_certificate(self._ssl)
        return handshake_info(self._ssl, self.context.certificate_files.get(int(ffi.cast("uintptr_t", presented))))


def handshake_info(ssl: object, certificate: str | None = None) -> HandshakeInfo:
    """What a completed handshake on ``ssl`` negotiated (either side of the connection)."""
    proto = ffi.new("const unsigned char **")
    plen = ffi.new("unsigned int *")
    lib.SSL_get0_alpn_selected(ssl, proto, plen)
    alpn = ffi.buffer(proto[0], plen[0])[:].decode("ascii", "replace") if plen[0] else None
    lib.SSL_get0_next_proto_negotiated(ssl, proto, plen)
    npn = ffi.buffer(proto[0], plen[0])[:].decode("ascii", "replace") if plen[0] else None
    name = lib.SSL_get_servername(ssl, lib.TLSEXT_NAMETYPE_host_name)
    return HandshakeInfo(
        version=ffi.string(lib.SSL_get_version(ssl)).decode(),
        cipher=ffi.string(lib.SSL_CIPHER_get_name(lib.SSL_get_current_cipher(ssl))).decode(),
        alpn=alpn,
        npn=npn,
        server_name=ffi.string(name).decode("ascii", "replace") if name != ffi.NULL else None,
        resumed=bool(lib.SSL_session_reused(ssl)),
        certificate=certificate,
    )

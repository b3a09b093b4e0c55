"""Client-facing asyncio protocols: TLS (or plain TCP) -> HTTP/1.1 or HTTP/2 -> application.

This is the only layer that touches transports. Each accepted socket gets one protocol
object; the TLS session (:class:`albatross.tls.TLSConnection`) and the HTTP codecs are
sans-I/O objects it drives. The codec is chosen by the TLS handshake: ``h2`` from ALPN or
NPN selects HTTP/2, anything else HTTP/1.1.

Timeouts are enforced by one sweep per listener per second (:meth:`Listener.sweep`) rather
than a timer per connection: a handshake that stalls past ``handshake_timeout``, a
connection idle past ``idle_timeout`` (ALB's ``idle_timeout.timeout_seconds``, 60 s) and a
connection older than ``client_keep_alive`` (ALB's ``client_keep_alive.seconds``, 3600 s,
closed once idle) are closed.

Failures never leave this layer as exceptions: every bad input is logged with the peer's
address and reason, answered as the protocol requires (an alert from OpenSSL, a 400 to a
plain-HTTP request on the TLS port), and only that connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from albatross.http.exchange import App, Handler, Responder
from albatross.http.messages import ConnectionInfo, Request
from albatross.http1.connection import H1ServerConnection, error_response, serialize
from albatross.observe.observer import ListenerObserver
from albatross.observe.record import RequestRecord, request_head_size
from albatross.server.h2 import H2Server
from albatross.tls import (
    ApplicationData,
    CloseNotifyReceived,
    HandshakeCompleted,
    HandshakeInfo,
    PeerClosedError,
    PlaintextHTTPError,
    ServerContext,
    TLSConnection,
    TLSError,
)

log = logging.getLogger("albatross.listener")
tls_log = logging.getLogger("albatross.tls")

HIGH_WATER = 256 * 1024


@dataclass(frozen=True, slots=True)
class ListenerSettings:
    handshake_timeout: float = 10.0
    idle_timeout: float = 60.0
    client_keep_alive: float = 3600.0
    max_concurrent_streams: int = 128


def _connection_info(transport: asyncio.BaseTransport) -> ConnectionInfo:
    peer = transport.get_extra_info("peername") or ("-", 0)
    local = transport.get_extra_info("sockname") or ("-", 0)
    host, port = str(peer[0]), int(peer[1])
    label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ConnectionInfo(label, client_ip=host, client_port=port, local_port=int(local[1]))


@dataclass(frozen=True, slots=True)
class Binding:
    """What one listening socket should serve: where, which scheme, which app, which TLS context.

    A configuration compiles into bindings; the server keeps one :class:`Listener` per
    ``(host, port)`` and, on a reload, hands a listener that stays its new app, settings and
    TLS context instead of closing its socket (even HTTP to HTTPS: the protocol is chosen per
    accepted connection).
    """

    host: str
    port: int
    scheme: str  # "https", "http" or "admin"
    app: App
    settings: ListenerSettings
    tls: ServerContext | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.host, self.port


class Listener:
    """One listening socket's shared state: settings, TLS context, open connections.

    ``app``, ``settings`` and ``tls`` may be replaced while the listener serves (a reload):
    codecs reach the app through :meth:`dispatch`, so requests on open keep-alive connections
    follow the new rules; handshakes in progress and established TLS sessions keep the context
    they started with, and new connections take the new one.
    """

    def __init__(self, app: App, settings: ListenerSettings, tls: ServerContext | None = None, *,
                 scheme: str = "", host: str = "", port: int = 0) -> None:
        self.app = app
        self.settings = settings
        self.tls = tls
        self.scheme = scheme or ("https" if tls is not None else "http")
        self.host = host
        self.port = port
        self.connections: set[_ClientProtocol] = set()
        self.server: asyncio.base_events.Server | None = None
        self.observe: ListenerObserver | None = None  # set by the server: metrics and logs

    @classmethod
    def from_binding(cls, b: Binding) -> Listener:
        return cls(b.app, b.settings, b.tls, scheme=b.scheme, host=b.host, port=b.port)

    def update(self, b: Binding) -> None:
        self.app, self.settings, self.tls, self.scheme = b.app, b.settings, b.tls, b.scheme

    def dispatch(self, request: Request, responder: Responder) -> Handler:
        observe = self.observe
        if observe is not None:
            record = request.record = RequestRecord(observe, request)
            record.received = request_head_size(request)
        return self.app(request, responder)

    def record(self, request: Request) -> None:
        """Give a request the codec answers by itself (400, 408, 505 ...) its record."""
        if self.observe is not None:
            request.record = RequestRecord(self.observe, request)

    def protocol_factory(self) -> asyncio.Protocol:
        return TLSProtocol(self) if self.tls is not None else PlainProtocol(self)

    def sweep(self, now: float) -> None:
        """Close connections past their handshake, idle or keep-alive deadlines."""
        s = self.settings
        for conn in list(self.connections):
            if not conn.ready and now - conn.started > s.handshake_timeout:
                tls_log.info("TLS handshake from %s timed out after %.0f s", conn.info.peer, s.handshake_timeout)
                if isinstance(conn, TLSProtocol):
                    conn._handshake_failed("handshake timed out")
                conn.abort()
            elif now - conn.last_activity > s.idle_timeout:
                conn.idle_timeout()
            elif now - conn.started > s.client_keep_alive and conn.idle():
                conn.close()


class _ClientProtocol(asyncio.Protocol):
    """Shared by the TLS and plain protocols: codec choice, flow control, bookkeeping."""

    ready = True

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.codec: H1ServerConnection | H2Server | None = None
        self.info = ConnectionInfo("-")
        self.started = self.last_activity = time.monotonic()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport subclasses
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.info = _connection_info(transport)
        self.listener.connections.add(self)
        if self.listener.observe is not None:
            self.listener.observe.new_connection()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self.codec is not None:
            self.codec.connection_lost()
        self.codec = None

    def pause_writing(self) -> None:
        # The client is not reading: let the codec hold back whatever produces responses.
        if self.codec is not None:
            self.codec.pause_writing()

    def resume_writing(self) -> None:
        if self.codec is not None and not self.closing:
            self.codec.resume_writing()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def start_codec(self, protocol: str, scheme: bytes) -> None:
        s = self.listener.settings
        try:
            if protocol == "h2":
                self.codec = H2Server(self.listener.dispatch, self, self.info, s.max_concurrent_streams)
            else:
                self.codec = H1ServerConnection(self.listener.dispatch, self, scheme=scheme, connection=self.info,
                                                recorder=self.listener.record)
        except Exception:  # as in deliver(): one connection lost, logged with its peer
            log.exception("cannot start %s on connection from %s; closing it", protocol, self.info.peer)
            self.abort()

    def deliver(self, data: bytes) -> None:
        codec = self.codec
        assert codec is not None
        try:
            codec.receive_data(data)
        except Exception:  # a bug must cost one connection, never the listener
            log.exception("internal error on connection from %s; closing it", self.info.peer)
            self.abort()

    def idle(self) -> bool:
        return self.codec is None or self.codec.idle()

    def idle_timeout(self) -> None:
        """Nothing moved for idle_timeout: close an idle connection, answer 408 to a half-received
        request; a request waiting for its target is timed out on the target side (504)."""
        if self.idle():
            log.debug("closing idle connection from %s", self.info.peer)
            self.close()
        elif isinstance(self.codec, H1ServerConnection):
            self.codec.request_timeout()

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class PlainProtocol(_ClientProtocol):
    """HTTP/1.1 over plain TCP (ALB offers no cleartext HTTP/2)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.start_codec("http/1.1", b"http")

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        self.deliver(data)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.last_activity = time.monotonic()
            self.transport.write(data)

    def close(self) -> None:
        if not self.closing and self.transport is not None:
            self.closing = True
            self.transport.close()


class TLSProtocol(_ClientProtocol):
    """TLS on memory BIOs; the codec is chosen when the handshake completes."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(listener)
        assert listener.tls is not None
        self.tls = TLSConnection(listener.tls)
        self.ready = False
        self.ticket_used = False  # a session ticket was decrypted during the handshake

    def data_received(self, data: bytes) -> None:
        if self.closing:  # failed or closing: nothing more is read from this client
            return
        self.last_activity = time.monotonic()
        tls = self.tls
        if self.codec is not None:  # established: the fast path, no event objects
            try:
                plaintext = tls.receive_plaintext(data)
            except TLSError as exc:
                self._failed(exc)
                return
            self._flush()
            if plaintext and not self.closing:
                self.deliver(plaintext)
            if tls.peer_closed:
                self.close()
            return
        ring = tls.context.tickets.c
        decrypted = ring.decrypted
        try:
            events = tls.receive_data(data)
        except TLSError as exc:
            self._failed(exc)
            return
        if ring.decrypted != decrypted:
            self.ticket_used = True
        self._flush()
        for event in events:
            if isinstance(event, ApplicationData):
                if self.codec is not None and not self.closing:
                    self.deliver(event.data)
            elif isinstance(event, HandshakeCompleted):
                self._handshake_completed(event.info)
            elif isinstance(event, CloseNotifyReceived):
                self.close()

    def _handshake_completed(self, info: HandshakeInfo) -> None:
        self.ready = True
        self.info.tls = info
        tls_log.debug("TLS from %s: %s %s alpn=%s npn=%s sni=%s resumed=%s", self.info.peer, info.version,
                      info.cipher, info.alpn, info.npn, info.server_name, info.resumed)
        observe = self.listener.observe
        if observe is not None:
            resumed = None
            if info.resumed:
                resumed = "ticket" if self.ticket_used or info.version == "TLSv1.3" else "session_id"
            observe.handshake(self.info, info, self.started, resumed)
        self.start_codec(info.application_protocol, b"https")

    def _handshake_failed(self, reason: str) -> None:
        observe = self.listener.observe
        if observe is not None:
            observe.handshake_failed(self.info, reason, self.started)

    def _failed(self, exc: TLSError) -> None:
        peer = self.info.peer
        if not self.ready and not self.closing:
            self._handshake_failed("plain HTTP request" if isinstance(exc, PlaintextHTTPError)
                                   else "client closed connection" if isinstance(exc, PeerClosedError) else exc.reason)
        if isinstance(exc, PlaintextHTTPError):
            tls_log.info("plain HTTP request on TLS port from %s: answered 400", peer)
            body = serialize(error_response(400, "The plain HTTP request was sent to HTTPS port"), head=False,
                             close=True)
            self._write_raw(body)
        elif isinstance(exc, PeerClosedError):
            if exc.during_handshake:
                tls_log.info("client %s went away during the TLS handshake", peer)
        elif exc.during_handshake:
            tls_log.info("TLS handshake from %s failed: %s", peer, exc.reason)
        else:
            tls_log.info("TLS error on connection from %s: %s", peer, exc.reason)
        self._flush()  # the alert OpenSSL queued, if any
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        self._note_vanished()
        self.tls.end_of_input()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._note_vanished()
        super().connection_lost(exc)

    def _note_vanished(self) -> None:
        if not self.ready and not self.closing:
            self.closing = True
            tls_log.info("client %s went away during the TLS handshake", self.info.peer)
            self._handshake_failed("client closed connection")

    def _write_raw(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _flush(self) -> None:
        self._write_raw(self.tls.data_to_send())

    def send(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_activity = time.monotonic()
        try:
            self.tls.send(data)
        except TLSError as exc:
            self._failed(exc)
            return
        self._flush()

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.tls.start_shutdown()
        self._flush()
        if self.transport is not None:
            self.transport.close()


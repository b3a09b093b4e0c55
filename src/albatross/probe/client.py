"""Where the probe connects, and one blocking TLS connection at a time.

The probe is a command-line tool, so its I/O is plain blocking sockets with a deadline per
connection (``--timeout``); the TLS and HTTP/2 logic stays in the sans-I/O cores
(:mod:`albatross.tls.client`, :mod:`albatross.http2.client`). The target is resolved once, and
every check connects to that one address: the probe never goes anywhere but where it is pointed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from albatross.errors import AlbatrossError
from albatross.tls.client import Alert, ClientContext, ClientSession, ClientSettings, TLSClientConnection
from albatross.tls.connection import ApplicationData, CloseNotifyReceived, PeerClosedError, TLSError

__all__ = ["Connection", "Dialer", "HandshakeFailed", "ProbeError", "Target", "parse_target"]


class ProbeError(AlbatrossError):
    """The probe cannot run at all: bad URL, server unreachable, first handshake failed."""


class HandshakeFailed(Exception):
    """A TLS handshake failed. ``reason`` is OpenSSL's; ``alerts`` what crossed the wire."""

    def __init__(self, reason: str, alerts: tuple[Alert, ...]) -> None:
        self.reason = reason
        self.alerts = alerts
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """The server's own answer if it sent an alert, else OpenSSL's reason."""
        received = [a for a in self.alerts if not a.sent]
        return str(received[0]) if received else self.reason


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved ``https://host:port/path`` and how to greet it."""

    host: str
    port: int
    path: str
    sni: str | None
    timeout: float
    family: int = socket.AF_INET
    sockaddr: tuple = ()  # type: ignore[type-arg]

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.sockaddr[0]}:{self.sockaddr[1]}" if self.family == socket.AF_INET else \
            f"[{self.sockaddr[0]}]:{self.sockaddr[1]}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_target(url: str, sni: str | None = None, timeout: float = 10.0) -> Target:
    """``https://host[:port][/path]`` → an unresolved :class:`Target`. SNI defaults to the host
    when it is a name; an IP literal gets none (as browsers do)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme != "https":
        raise ProbeError(f"{url}: only https:// URLs can be probed")
    try:
        host, port = parts.hostname, parts.port or 443
    except ValueError as exc:
        raise ProbeError(f"{url}: {exc}") from None
    if not host:
        raise ProbeError(f"{url}: no host name")
    if sni is None and not _is_ip(host):
        sni = host
    return Target(host, port, parts.path or "/", sni or None, timeout)


def resolve(target: Target) -> list[Target]:
    """The host's addresses, in the resolver's order, as targets; a name that does not resolve
    is fatal. The probe then keeps to the first address that accepts a connection."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError(f"cannot resolve {target.host}: {exc.strerror}") from None
    unique = dict.fromkeys((family, sockaddr[:2]) for family, _, _, _, sockaddr in infos)
    return [Target(target.host, target.port, target.path, target.sni, target.timeout, family, sockaddr)
            for family, sockaddr in unique]


class Connection:
    """One TLS connection, handshake done, with a deadline for everything it does."""

    def __init__(self, sock: socket.socket, tls: TLSClientConnection, deadline: float) -> None:
        self.sock = sock
        self.tls = tls
        self.deadline = deadline
        self.eof = False
        # Events that arrived with the end of the handshake: a TLS 1.2 server may send
        # application data (an HTTP/2 server its SETTINGS) in the same segment as its Finished.
        self._early: list = []  # type: ignore[type-arg]

    def flush(self) -> None:
        """Write whatever TLS produced for the network."""
        out = self.tls.data_to_send()
        if out:
            self.sock.settimeout(self._left())
            self.sock.sendall(out)

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def pump(self) -> list:  # type: ignore[type-arg]
        """Read once from the socket, feed TLS, write what it produced; returns its events.
        Raises TimeoutError past the deadline, TLSError on a TLS failure."""
        self.sock.settimeout(self._left())
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            self.tls.end_of_input()
        try:
            return self.tls.receive_data(data)
        finally:
            self.flush()

    def handshake(self) -> None:
        self.tls.start()
        self.flush()
        while not self.tls.handshake_done:
            self._early = self.pump()

    def send(self, data: bytes) -> None:
        self.tls.send(data)
        self.flush()

    def read(self, on_data: Callable[[bytes], bool]) -> None:
        """Read application data into ``on_data`` until it returns True, the server closes
        (close_notify or EOF), or the deadline passes (TimeoutError)."""
        while True:
            events, self._early = self._early, []
            try:
                events = events or self.pump()
            except PeerClosedError:
                return
            for event in events:
                if isinstance(event, ApplicationData) and on_data(event.data):
                    return
                if isinstance(event, CloseNotifyReceived):
                    return

    def close(self) -> None:
        try:
            if not self.eof:
                self.tls.start_shutdown()
                self.sock.settimeout(1.0)
                self.sock.sendall(self.tls.data_to_send())
        except OSError:
            pass
        finally:
            self.sock.close()
            self.tls.free()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Dialer:
    """Opens connections to one resolved target, one :class:`ClientContext` per way of connecting."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._contexts: dict[ClientSettings, ClientContext] = {}

    def with_target(self, target: Target) -> Dialer:
        """The same contexts, another address of the same host."""
        other = Dialer(target)
        other._contexts = self._contexts
        return other

    def context(self, settings: ClientSettings) -> ClientContext:
        ctx = self._contexts.get(settings)
        if ctx is None:
            ctx = self._contexts[settings] = ClientContext(settings)
        return ctx

    def connect(self, settings: ClientSettings = ClientSettings(), *, alpn: tuple[str, ...] = (),
                session: ClientSession | None = None, ocsp: bool = False, sigalgs: str | None = None) -> Connection:
        """A connection with its handshake done. Raises OSError (TimeoutError included) for
        the network, :class:`HandshakeFailed` for TLS."""
        t = self.target
        deadline = time.monotonic() + t.timeout
        tls = TLSClientConnection(self.context(settings), server_name=t.sni, alpn=alpn, session=session,
                                  request_ocsp=ocsp, sigalgs=sigalgs)
        sock = socket.socket(t.family, socket.SOCK_STREAM)
        conn = Connection(sock, tls, deadline)
        try:
            sock.settimeout(t.timeout)
            try:
                sock.connect(t.sockaddr)
            except TimeoutError:
                raise TimeoutError(f"no TCP connection within {t.timeout:g} s") from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                conn.handshake()
            except TimeoutError:
                raise TimeoutError(f"no TLS handshake within {t.timeout:g} s") from None
        except TLSError as exc:
            alerts = tls.alerts
            conn.close()
            raise HandshakeFailed(exc.reason, alerts) from None
        except BaseException:
            conn.close()
            raise
        return conn

"""Version-neutral request and response objects, and the bytes every response reuses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from email.utils import formatdate
from http import HTTPStatus

Headers = list[tuple[bytes, bytes]]

SERVER = b"albatross"


@dataclass(slots=True)
class ConnectionInfo:
    """What the application may know about the client connection."""

    peer: str  # "ip:port" or "[ipv6]:port", for logs
    tls: object = None  # albatross.tls.HandshakeInfo on TLS listeners
    client_ip: str = "-"
    client_port: int = 0
    local_port: int = 0
    forwarding: Any = None  # per-connection forwarding data, computed on the first request
    trace_id: str | None = None  # conn_trace_id of the access and connection logs, made on first use


# Slots of a fast-path field scan (the order of alb_http1.c's out[] array). Requests: Host,
# Content-Length, X-Forwarded-For, X-Amzn-Trace-Id, Cookie, User-Agent, Connection; responses:
# Content-Length, Connection, Date and the first Set-Cookie (in the COOKIE slot).
F_HOST, F_CONTENT_LENGTH, F_XFF, F_TRACE, F_COOKIE, F_USER_AGENT, F_CONNECTION, F_DATE = range(8)


class RawFields(Protocol):
    """A field block read by the HTTP/1.1 fast path (``albatross.http1.scan.FieldScan``)."""

    block: bytes  # the raw lines, "Name: value\r\n" each
    kept: bytes  # the lines the fast path forwards as they are
    fields: int  # number of lines

    def get(self, slot: int) -> bytes | None: ...
    def split(self) -> Headers: ...


class _WithRawFields(Protocol):
    _headers: Headers | None
    raw: RawFields | None


def fields_of(head: _WithRawFields) -> Headers:
    """A head's field list, built from its raw block (once) when only the block was kept."""
    headers = head._headers
    if headers is None:
        assert head.raw is not None
        headers = head._headers = head.raw.split()
    return headers


class Request:
    """A request head as the front end parsed it (HTTP/1.1 or HTTP/2).

    ``headers`` are the fields as received (HTTP/2: lower-case names, pseudo-headers removed).
    A request that came through the HTTP/1.1 fast path carries its raw field block in ``raw``
    instead, and ``headers`` is built from it only if something asks (a rule on a header,
    stickiness cookies): the common request never becomes a list of tuples.
    """

    __slots__ = ("method", "target", "_headers", "http_version", "authority", "scheme", "connection",
                 "end_stream", "record", "raw")

    def __init__(self, method: bytes, target: bytes, headers: Headers | None, http_version: str,
                 authority: bytes | None = None, scheme: bytes = b"https", connection: ConnectionInfo | None = None,
                 end_stream: bool = False, record: Any = None, raw: RawFields | None = None) -> None:
        self.method = method
        self.target = target  # origin-form path and query (or the target as received)
        self._headers = headers
        self.http_version = http_version  # "1.0", "1.1" or "2"
        self.authority = authority  # Host or :authority
        self.scheme = scheme
        self.connection = connection
        self.end_stream = end_stream  # HTTP/2: END_STREAM came with the headers (no body follows)
        self.record = record  # albatross.observe.RequestRecord: what the request did, for metrics and logs
        self.raw = raw

    @property
    def headers(self) -> Headers:
        return fields_of(self)

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    def __repr__(self) -> str:
        return (f"Request({self.method!r}, {self.target!r}, http_version={self.http_version!r}, "
                f"authority={self.authority!r})")


@dataclass(slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class DateHeader:
    """The ``Date`` value, formatted at most once a second (not once per request)."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self, now: float | None = None) -> bytes:
        second = int(now if now is not None else time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode()
        return self._value


DATE = DateHeader()


def has_date(headers: Headers) -> bool:
    """True when the fields already carry a Date (a target's response usually does)."""
    for name, _ in headers:
        if len(name) == 4 and name.lower() == b"date":
            return True
    return False

"""Version-neutral request and response objects, and the bytes every response reuses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
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


@dataclass(slots=True)
class Request:
    """A request head as the front end parsed it (HTTP/1.1 or HTTP/2)."""

    method: bytes
    target: bytes  # origin-form path and query
    headers: Headers  # lower-case names, as received (HTTP/2 pseudo-headers removed)
    http_version: str  # "1.0", "1.1" or "2"
    authority: bytes | None = None  # Host or :authority
    scheme: bytes = b"https"
    connection: ConnectionInfo | None = None
    end_stream: bool = False  # HTTP/2: END_STREAM came with the headers (no body follows)
    record: Any = None  # albatross.observe.RequestRecord: what the request did, for metrics and logs


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

"""Events reported by :class:`albatross.http2.H2Connection.receive_data`.

Every event is a frozen, slotted dataclass named in the past tense. Each stream yields, in
order: one :class:`RequestReceived`, any number of :class:`DataReceived`, at most one
:class:`TrailersReceived`, and exactly one :class:`StreamClosed` (or its subclass
:class:`StreamReset`). The end of the request is reported exactly once per stream: by the
``end_stream`` flag of the last RequestReceived/DataReceived/TrailersReceived, or by a
:class:`StreamEnded` when the end came without payload (an empty DATA frame with END_STREAM).

A client session (:class:`~albatross.http2.client.H2ClientConnection`, used by ``albatross
probe``) reports :class:`ResponseReceived` instead of RequestReceived, and the server's
:class:`SettingsReceived`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConnectionTerminated",
    "DataReceived",
    "H2Event",
    "RequestReceived",
    "ResponseReceived",
    "SettingsReceived",
    "StreamClosed",
    "StreamEnded",
    "StreamReset",
    "TrailersReceived",
]


class H2Event:
    """Base class of every HTTP/2 event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RequestReceived(H2Event):
    """A complete, valid request header block opened ``stream_id``.

    ``headers`` keeps the wire order, pseudo-headers (``:method``, ``:path``, ...) first, as
    raw bytes; nghttp2 has already validated them (RFC 9113 §8), so names are lowercase and
    contain no connection-specific fields.
    """

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    end_stream: bool


@dataclass(frozen=True, slots=True)
class DataReceived(H2Event):
    """Request body bytes. Acknowledge them with ``consume(stream_id, len(data))`` once they
    have been passed on; until then they count against the client's flow-control window."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class TrailersReceived(H2Event):
    """A trailing header block; it always ends the request (``end_stream`` is True)."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamEnded(H2Event):
    """The request ended with an empty DATA frame (no other event carried the flag)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamClosed(H2Event):
    """The stream is gone; ``error_code`` 0 means it completed normally.

    Reported for every stream nghttp2 closes, including ones refused or reset before a
    :class:`RequestReceived` was reported: ignore ids you do not know.
    """

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class StreamReset(StreamClosed):
    """The stream was closed because the client sent RST_STREAM with ``error_code``."""


@dataclass(frozen=True, slots=True)
class ResponseReceived(H2Event):
    """A response header block on ``stream_id`` (client sessions only); an interim (1xx)
    response is reported too, before the final one."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    end_stream: bool

    @property
    def status(self) -> int:
        return int(dict(self.headers).get(b":status", b"0"))


@dataclass(frozen=True, slots=True)
class SettingsReceived(H2Event):
    """The peer's SETTINGS frame (client sessions only): ``(identifier, value)`` pairs in the
    order they were sent; identifiers the peer did not send keep their RFC 9113 defaults."""

    settings: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(H2Event):
    """The client sent GOAWAY: streams above ``last_stream_id`` were not processed by it."""

    error_code: int
    last_stream_id: int

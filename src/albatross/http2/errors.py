"""Exceptions raised by :mod:`albatross.http2`."""

from __future__ import annotations

from albatross.errors import AlbatrossError

__all__ = ["H2Error", "H2ProtocolError", "H2StateError", "H2StreamClosedError", "H2StreamError"]


class H2Error(AlbatrossError):
    """Root of every HTTP/2 error; ``lib_error`` is nghttp2's negative error code, if any."""

    def __init__(self, message: str, lib_error: int = 0) -> None:
        super().__init__(message)
        self.lib_error = lib_error


class H2ProtocolError(H2Error):
    """Fatal connection error. GOAWAY is already queued: flush ``data_to_send()``, then close."""


class H2StateError(H2Error):
    """The connection was freed or has failed; no further calls are possible."""


class H2StreamError(H2Error):
    """An operation on one stream was rejected; the connection itself is fine."""

    def __init__(self, message: str, stream_id: int, lib_error: int = 0) -> None:
        super().__init__(message, lib_error)
        self.stream_id = stream_id


class H2StreamClosedError(H2StreamError):
    """The stream is closed (finished, reset by either side, or never opened)."""

"""HTTP/2 protocol layer: libnghttp2 behind a small sans-I/O API.

See :mod:`albatross.http2.connection` for the theory of operation (the server side);
:mod:`albatross.http2.client` is the client side ``albatross probe`` uses. This package is the
only place that binds libnghttp2.
"""

from albatross.http2.client import H2ClientConnection
from albatross.http2.connection import H2Connection
from albatross.http2.errors import H2Error, H2ProtocolError, H2StateError, H2StreamClosedError, H2StreamError
from albatross.http2.events import (
    ConnectionTerminated,
    DataReceived,
    H2Event,
    RequestReceived,
    ResponseReceived,
    SettingsReceived,
    StreamClosed,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)

__all__ = [
    "ConnectionTerminated",
    "DataReceived",
    "H2ClientConnection",
    "H2Connection",
    "H2Error",
    "H2Event",
    "H2ProtocolError",
    "H2StateError",
    "H2StreamClosedError",
    "H2StreamError",
    "RequestReceived",
    "ResponseReceived",
    "SettingsReceived",
    "StreamClosed",
    "StreamEnded",
    "StreamReset",
    "TrailersReceived",
]

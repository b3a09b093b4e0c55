"""Client-side HTTP/2 connection: one libnghttp2 client session, sans-I/O, for ``albatross probe``.

The session is the server's C machinery (``src/_albatross_cffi/nghttp2*.py``) created with
``nghttp2_session_client_new``: no Python runs inside nghttp2. The first
:meth:`~H2ClientConnection.data_to_send` carries the connection preface and our SETTINGS (push
off), followed by any request submitted with :meth:`~H2ClientConnection.submit_request`.
:meth:`~H2ClientConnection.receive_data` returns the server's :class:`SettingsReceived`, each
:class:`ResponseReceived` and the usual data/close events. Flow-control window updates are
automatic: a probe reads everything it is sent.
"""

from __future__ import annotations

from albatross.http2._binding import ffi, lib
from albatross.http2.connection import Headers, _build_events, _pack, _strerror
from albatross.http2.errors import H2ProtocolError, H2StateError
from albatross.http2.events import H2Event

__all__ = ["SETTING_NAMES", "H2ClientConnection"]

# RFC 9113 section 6.5.2, plus RFC 8441 and RFC 9218.
SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE",
    0x2: "ENABLE_PUSH",
    0x3: "MAX_CONCURRENT_STREAMS",
    0x4: "INITIAL_WINDOW_SIZE",
    0x5: "MAX_FRAME_SIZE",
    0x6: "MAX_HEADER_LIST_SIZE",
    0x8: "ENABLE_CONNECT_PROTOCOL",
    0x9: "NO_RFC7540_PRIORITIES",
}


class H2ClientConnection:
    """One client-side HTTP/2 connection (after ALPN or NPN chose "h2"), without I/O."""

    __slots__ = ("_s",)

    def __init__(self, *, initial_window_size: int = 65535, max_header_list_size: int = 64 * 1024) -> None:
        cfg = ffi.new("alb_h2_config *", {
            "max_concurrent_streams": 100,
            "initial_window_size": initial_window_size,
            "connection_window_size": 65535,
            "max_header_list_size": max_header_list_size,
            "max_requests": 2**32 - 1,
            "max_resets": 2**32 - 2,
            "max_continuations": 64,
        })
        session = lib.alb_h2_client_new(cfg)
        if session == ffi.NULL:
            raise MemoryError("cannot create an nghttp2 client session")
        self._s = ffi.gc(session, lib.alb_h2_free)

    def submit_request(self, headers: Headers) -> int:
        """Queue a request without a body (pseudo-headers first); returns its stream id."""
        packed = _pack(headers)
        sid = lib.alb_h2_submit_request(self._live(), packed, len(packed))
        if sid < 0:
            raise H2ProtocolError(f"cannot submit the request: {_strerror(sid)}", sid)
        return int(sid)

    def receive_data(self, data: bytes) -> list[H2Event]:
        """Process bytes from the server; return the events they completed, in order."""
        s = self._live()
        rv = lib.alb_h2_recv(s, data, len(data))
        if rv < 0:
            raise H2ProtocolError(f"HTTP/2 connection error: {_strerror(rv)}", rv)
        done = s.ev_done
        return _build_events(ffi.buffer(s.ev.data, done)[:]) if done else []

    def data_to_send(self) -> bytes:
        s = self._live()
        n = lib.alb_h2_drain(s, (1 << 63) - 1)
        return ffi.buffer(s.out.data, n)[:] if n > 0 else b""

    @property
    def want_read(self) -> bool:
        """False once the session has ended (GOAWAY either way, or a protocol error)."""
        return self._s is not None and bool(lib.alb_h2_want_read(self._s))

    def close(self) -> None:
        """Queue a graceful GOAWAY."""
        lib.alb_h2_goaway(self._live(), 0)

    def free(self) -> None:
        if self._s is not None:
            s, self._s = self._s, None
            ffi.release(s)

    def _live(self):  # -> cdata alb_h2_session *
        if self._s is None:
            raise H2StateError("HTTP/2 connection already freed")
        return self._s

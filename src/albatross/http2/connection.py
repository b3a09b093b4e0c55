"""Server-side HTTP/2 connection: a sans-I/O wrapper around one libnghttp2 session.

Theory of operation
-------------------
The session lives in C (``alb_h2_*`` helpers in ``src/_albatross_cffi/nghttp2.py``) and no
Python code runs inside nghttp2's callbacks. Bytes flow in three steps:

1. :meth:`H2Connection.receive_data` hands the bytes read from the transport to
   ``nghttp2_session_mem_recv``. The C callbacks append compact records (request header
   blocks as ``name\\0value\\0...``, body chunks, end of stream, stream close, GOAWAY) to one
   buffer; this module parses that buffer once per call into :mod:`events <.events>`.
2. The application answers with :meth:`~H2Connection.submit_response` (one C call: status,
   packed headers, optional body) and, for streamed bodies, :meth:`~H2Connection.send_data`
   and :meth:`~H2Connection.send_trailers`. Body bytes are copied into C-owned per-stream
   buffers, freed when the stream closes.
3. :meth:`~H2Connection.data_to_send` runs nghttp2's ``mem_send`` loop in C and returns one
   ``bytes`` for the transport, at most ``limit`` long.

Inbound flow control is manual: nghttp2 only re-opens the client's window for body bytes the
application has acknowledged with :meth:`~H2Connection.consume`, so a slow upstream slows the
client down instead of filling memory here.

Abuse budgets (all per connection) live in C: RST_STREAM frames received plus streams the
client made invalid (rapid reset, CVE-2023-44487), CONTINUATION frames per header block, and a
request cap after which GOAWAY is sent (AWS ALB closes HTTP/2 connections after 10,000
requests). The first two end the connection with GOAWAY(ENHANCE_YOUR_CALM).

The connection is finished when neither :attr:`~H2Connection.want_read` nor
:attr:`~H2Connection.want_write` is true; the I/O layer then closes the transport and calls
:meth:`~H2Connection.free` (the garbage collector would too).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from albatross.http2._binding import ffi, lib
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

__all__ = ["H2Connection"]

Headers = Iterable[tuple[bytes, bytes]]

_RECORD = struct.Struct("=BBxxiII")  # alb_h2_evhdr: type, flags, stream id, code, payload length
_UNLIMITED = (1 << 63) - 1
_MAX_WINDOW = (1 << 31) - 1
_STREAM_CLOSED = -510  # NGHTTP2_ERR_STREAM_CLOSED


def _headers(payload: bytes) -> list[tuple[bytes, bytes]]:
    fields = iter(payload.split(b"\0"))
    return list(zip(fields, fields))


def _build_events(buf: bytes) -> list[H2Event]:
    """Turn the C event records into event objects (one pass, no per-record C calls)."""
    events: list[H2Event] = []
    append = events.append
    unpack = _RECORD.unpack_from
    request, data, closed, headers = RequestReceived, DataReceived, StreamClosed, _headers
    off, end = 0, len(buf)
    while off < end:
        kind, flags, sid, code, n = unpack(buf, off)
        off += 16
        if kind == _EV_REQUEST:
            append(request(sid, headers(buf[off : off + n]), flags == 1))
        elif kind == _EV_DATA:
            append(data(sid, buf[off : off + n], flags == 1))
        elif kind == _EV_CLOSED:
            append(closed(sid, code))
        else:
            append(_RARE[kind](sid, code, flags, buf[off : off + n]))
        off += n
    return events


_EV_REQUEST = lib.ALB_H2_EV_REQUEST
_EV_DATA = lib.ALB_H2_EV_DATA
_EV_CLOSED = lib.ALB_H2_EV_CLOSED
_RARE = {
    lib.ALB_H2_EV_TRAILERS: lambda sid, code, flags, payload: TrailersReceived(sid, _headers(payload), True),
    lib.ALB_H2_EV_END_STREAM: lambda sid, code, flags, payload: StreamEnded(sid),
    lib.ALB_H2_EV_RESET: lambda sid, code, flags, payload: StreamReset(sid, code),
    lib.ALB_H2_EV_GOAWAY: lambda sid, code, flags, payload: ConnectionTerminated(code, sid),
    # Client sessions only (albatross probe):
    lib.ALB_H2_EV_RESPONSE: lambda sid, code, flags, payload: ResponseReceived(sid, _headers(payload), flags == 1),
    lib.ALB_H2_EV_SETTINGS: lambda sid, code, flags, payload: SettingsReceived(
        tuple(struct.iter_unpack("=II", payload))),
}


def _pack(headers: Headers) -> bytes:
    """``[(name, value), ...]`` -> ``name\\0value\\0...\\0value``, refusing NUL inside fields."""
    flat = [field for pair in headers for field in pair]
    if not flat:
        return b""
    packed = b"\0".join(flat)
    if packed.count(b"\0") != len(flat) - 1:
        raise H2Error("HTTP/2 header names and values must not contain NUL bytes")
    return packed


def _strerror(rv: int) -> str:
    return ffi.string(lib.nghttp2_strerror(rv)).decode()


def _check_range(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


class H2Connection:
    """One server-side HTTP/2 connection (after the TLS/ALPN "h2" handshake), without I/O.

    Feed received bytes to :meth:`receive_data`, act on the returned events, and write what
    :meth:`data_to_send` returns. Header names and values are ``bytes``; response header names
    must be lowercase and free of connection-specific fields (the proxy layer strips them).

    Defaults: 128 concurrent streams (as AWS ALB advertises); a 256 KiB per-stream and 1 MiB
    connection receive window, so one upload can move ~25 MB/s at 10 ms RTT while a
    connection never holds more than 1 MiB of unacknowledged request body; a 64 KiB header
    list; 10,000 requests (ALB's per-connection limit); 1000 resets; 8 CONTINUATION frames
    per header block (nghttp2's default).
    """

    __slots__ = ("_s",)

    def __init__(
        self,
        *,
        max_concurrent_streams: int = 128,
        max_requests: int = 10_000,
        initial_window_size: int = 256 * 1024,
        connection_window_size: int = 1024 * 1024,
        max_header_list_size: int = 64 * 1024,
        max_resets: int = 1000,
        max_continuations: int = 8,
    ) -> None:
        cfg = ffi.new(
            "alb_h2_config *",
            {
                "max_concurrent_streams": _check_range("max_concurrent_streams", max_concurrent_streams, 1, 2**31 - 1),
                "max_requests": _check_range("max_requests", max_requests, 1, 2**32 - 1),
                "initial_window_size": _check_range("initial_window_size", initial_window_size, 0, _MAX_WINDOW),
                "connection_window_size": _check_range("connection_window_size", connection_window_size, 0, _MAX_WINDOW),
                "max_header_list_size": _check_range("max_header_list_size", max_header_list_size, 1, 2**32 - 1),
                "max_resets": _check_range("max_resets", max_resets, 0, 2**32 - 2),
                "max_continuations": _check_range("max_continuations", max_continuations, 0, 2**32 - 1),
            },
        )
        session = lib.alb_h2_new(cfg)
        if session == ffi.NULL:
            raise MemoryError("cannot create an nghttp2 session")
        self._s = ffi.gc(session, lib.alb_h2_free)

    # -- input ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[H2Event]:
        """Process bytes from the client; return the events they completed, in order.

        Streams that closed because of what was *sent* (the last DATA frame of a response)
        are reported by the next call; ``receive_data(b"")`` polls for them.

        Raises :class:`H2ProtocolError` on a fatal error (garbage, HPACK failure, flood):
        GOAWAY is then queued in :meth:`data_to_send` and the connection accepts no more input.
        """
        s = self._s
        if s is None:
            raise H2StateError("HTTP/2 connection already freed")
        if type(data) is not bytes:
            data = ffi.from_buffer(data)
        rv = lib.alb_h2_recv(s, data, len(data))
        if rv < 0:
            raise H2ProtocolError(f"HTTP/2 connection error: {_strerror(rv)}", rv)
        done = s.ev_done
        return _build_events(ffi.buffer(s.ev.data, done)[:]) if done else []

    def consume(self, stream_id: int, nbytes: int) -> None:
        """Acknowledge ``nbytes`` of request body on ``stream_id`` (from :class:`DataReceived`).

        WINDOW_UPDATE goes out once half a window has been acknowledged. Acknowledging bytes of
        a stream that has closed still re-opens the connection window.
        """
        rv = lib.alb_h2_consume(self._live(), stream_id, nbytes)
        if rv:
            self._check(rv, stream_id)

    # -- output --------------------------------------------------------------------------------

    def submit_response(
        self,
        stream_id: int,
        status: int,
        headers: Headers,
        body: bytes | None = None,
        end_stream: bool = True,
    ) -> None:
        """Queue the response head and, if given, a body.

        With ``end_stream=False`` the stream stays open for :meth:`send_data` and
        :meth:`send_trailers`; DATA is deferred (not sent, not busy-polled) until then.
        Raises :class:`H2StreamClosedError` if the stream is already closed.
        """
        packed = _pack(headers)
        s = self._s
        if s is None:
            raise H2StateError("HTTP/2 connection already freed")
        if body is None:
            rv = lib.alb_h2_submit_response(s, stream_id, status, packed, len(packed), ffi.NULL, 0, 0, end_stream)
        else:
            if type(body) is not bytes:
                body = ffi.from_buffer(body)
            rv = lib.alb_h2_submit_response(s, stream_id, status, packed, len(packed), body, len(body), 1, end_stream)
        if rv:
            self._check(rv, stream_id)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Append body bytes to a response submitted with ``end_stream=False``.

        The bytes are copied into a C buffer and sent as the client's window allows; see
        :meth:`outbound_buffered` to apply backpressure to the upstream.
        """
        if type(data) is not bytes:
            data = ffi.from_buffer(data)
        rv = lib.alb_h2_send_data(self._live(), stream_id, data, len(data), end_stream)
        if rv:
            self._check(rv, stream_id)

    def send_trailers(self, stream_id: int, trailers: Headers) -> None:
        """End a streamed response with a trailing header block, after any buffered data."""
        packed = _pack(trailers)
        rv = lib.alb_h2_send_trailers(self._live(), stream_id, packed, len(packed))
        self._check(rv, stream_id)

    def reset_stream(self, stream_id: int, error_code: int = 0x8) -> None:
        """Send RST_STREAM (default CANCEL); the stream's buffers are freed once it is sent."""
        self._check(lib.alb_h2_reset_stream(self._live(), stream_id, error_code), stream_id)

    def close(self, error_code: int = 0) -> None:
        """Send GOAWAY. With 0 it is graceful: open streams finish, new ones are refused.
        With an error code the connection ends as soon as the GOAWAY is written."""
        self._check(lib.alb_h2_goaway(self._live(), error_code), 0)

    def data_to_send(self, limit: int | None = None) -> bytes:
        """Return up to ``limit`` bytes (everything if None) to write to the transport.

        Bytes beyond ``limit`` stay queued (in C, at most one frame); pass a limit while the
        transport is congested so response bodies are not all serialised at once.
        """
        s = self._s
        if s is None or (limit is not None and limit <= 0):
            return b""
        n = lib.alb_h2_drain(s, _UNLIMITED if limit is None else limit)
        return ffi.buffer(s.out.data, n)[:] if n > 0 else b""

    # -- state ---------------------------------------------------------------------------------

    @property
    def want_read(self) -> bool:
        """False once the connection will process no more input (GOAWAY done, or dead)."""
        return self._s is not None and bool(lib.alb_h2_want_read(self._s))

    @property
    def want_write(self) -> bool:
        """True while :meth:`data_to_send` has (or can produce) bytes."""
        return self._s is not None and bool(lib.alb_h2_want_write(self._s))

    @property
    def requests_received(self) -> int:
        """Requests opened on this connection so far (refused ones excluded)."""
        return 0 if self._s is None else int(self._s.nrequests)

    def outbound_buffered(self, stream_id: int) -> int:
        """Response body bytes queued in C for ``stream_id`` and not yet serialised."""
        return 0 if self._s is None else lib.alb_h2_buffered(self._s, stream_id)

    def free(self) -> None:
        """Release the nghttp2 session and every buffer now. Idempotent; the object is unusable
        afterwards. Without it, the garbage collector frees the same memory."""
        if self._s is not None:
            s, self._s = self._s, None
            ffi.release(s)

    # -- helpers -------------------------------------------------------------------------------

    def _live(self):  # -> cdata alb_h2_session *
        s = self._s
        if s is None:
            raise H2StateError("HTTP/2 connection already freed")
        return s

    def _check(self, rv: int, stream_id: int) -> None:
        if rv == 0:
            return
        message = _strerror(rv)
        if lib.nghttp2_is_fatal(rv):
            raise H2ProtocolError(f"HTTP/2 connection error: {message}", rv)
        if self._s.dead:
            raise H2StateError("HTTP/2 connection has failed", rv)
        if rv == _STREAM_CLOSED:
            raise H2StreamClosedError(f"stream {stream_id} is closed", stream_id, rv)
        raise H2StreamError(f"stream {stream_id}: {message}", stream_id, rv)

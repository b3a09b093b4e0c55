"""HTTP/2 front end: :class:`albatross.http2.H2Connection` streams -> application handlers.

Each stream is an exchange: its request goes to ``app(request, responder)`` and the body is
streamed into the returned handler. Flow control both ways:

* request bodies are acknowledged to the client (``consume``) as the handler takes them, and
  held back while the handler has paused the body (the client's window then closes);
* response bodies are buffered per stream inside libnghttp2 and drained into the transport;
  a stream whose buffer passes ``HIGH_WATER`` pauses its handler until it drains below
  ``LOW_WATER``, and nothing is drained while the transport itself is paused.
"""

from __future__ import annotations

import logging
from typing import Protocol

from albatross.http.exchange import App, Handler
from albatross.http.messages import DATE, Headers, Request, has_date
from albatross.http1.scan import split_fields
from albatross.http2 import (
    ConnectionTerminated,
    DataReceived,
    H2Connection,
    H2Error,
    RequestReceived,
    StreamClosed,
    StreamEnded,
    TrailersReceived,
)

log = logging.getLogger("albatross.http2")

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
INTERNAL_ERROR = 0x2
_PSEUDO = {b":method", b":path", b":authority", b":scheme"}


class Owner(Protocol):
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class _Exchange2:
    """One stream, and the Responder for its response."""

    __slots__ = ("server", "stream_id", "request", "handler", "response_done", "paused", "body_paused",
                 "unconsumed")

    def __init__(self, server: H2Server, stream_id: int, request: Request) -> None:
        self.server = server
        self.stream_id = stream_id
        self.request = request
        self.handler: Handler = Handler()
        self.response_done = False
        self.paused = False
        self.body_paused = False
        self.unconsumed = 0

    def send_informational(self, status: int, headers: Headers) -> None:
        """Interim responses are not relayed over HTTP/2 (clients must not depend on them)."""

    def send_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                  head_only: bool = False) -> None:
        out = [] if has_date(headers) else [(b"date", DATE.value())]
        out += [(n.lower(), v) for n, v in headers]
        if content_length is not None:
            out.append((b"content-length", b"%d" % content_length))
        record = self.request.record
        if record is not None:  # the head counted as HTTP/1.1 text (HPACK sizes are per connection)
            record.response_head(status, 15 + sum(len(n) + len(v) + 4 for n, v in out))
        ends = head_only or status in (204, 304)
        self.server.h2.submit_response(self.stream_id, status, out, None, end_stream=ends)
        if ends:
            self.response_done = True
            self.server.flush()
            if record is not None:
                record.finish()

    def send_head_raw(self, status: int, fields: bytes, *, has_date: bool, extra: Headers,
                      content_length: int | None = None, head_only: bool = False) -> None:
        """Fields in HTTP/1 wire form (not used by the proxy for HTTP/2 clients): as send_head."""
        self.send_head(status, [*split_fields(fields), *extra], content_length=content_length, head_only=head_only)

    def send_body(self, data: bytes) -> None:
        if self.response_done or not data:
            return
        record = self.request.record
        if record is not None:
            record.sent += len(data)
        h2 = self.server.h2
        h2.send_data(self.stream_id, data, end_stream=False)
        if not self.paused and h2.outbound_buffered(self.stream_id) > HIGH_WATER:
            self.paused = True
            self.server.paused.add(self)
            self.handler.pause()

    def end(self, trailers: Headers | None = None) -> None:
        if self.response_done:
            return
        self.response_done = True
        if trailers:
            self.server.h2.send_trailers(self.stream_id, [(n.lower(), v) for n, v in trailers])
        else:
            self.server.h2.send_data(self.stream_id, b"", end_stream=True)
        self.server.flush()
        if self.request.record is not None:
            self.request.record.finish()

    def flush(self) -> None:
        """Drain what send_head/send_body queued in nghttp2: one write per batch of events."""
        self.server.flush()

    def abort(self) -> None:
        self.response_done = True
        self.server.h2.reset_stream(self.stream_id, INTERNAL_ERROR)
        self.server.flush()
        if self.request.record is not None:
            self.request.record.finish()

    def pause_request_body(self) -> None:
        self.body_paused = True

    def resume_request_body(self) -> None:
        self.body_paused = False
        if self.unconsumed:
            self.server.h2.consume(self.stream_id, self.unconsumed)
            self.unconsumed = 0
            self.server.flush()


class H2Server:
    """Runs the exchanges of one HTTP/2 client connection."""

    __slots__ = ("app", "owner", "connection", "h2", "streams", "paused", "write_paused", "closing")

    def __init__(self, app: App, owner: Owner, connection: object, max_concurrent_streams: int = 128) -> None:
        self.app = app
        self.owner = owner
        self.connection = connection
        self.h2 = H2Connection(max_concurrent_streams=max_concurrent_streams)
        self.streams: dict[int, _Exchange2] = {}
        self.paused: set[_Exchange2] = set()
        self.write_paused = False
        self.closing = False
        self.flush()  # our SETTINGS go out first

    def idle(self) -> bool:
        # A stream whose response went out is closed by nghttp2 on the next read: it counts as idle.
        return all(ex.response_done for ex in self.streams.values())

    def flush(self) -> None:
        if self.write_paused or self.closing:
            return
        out = self.h2.data_to_send()
        if out:
            self.owner.send(out)
        if self.paused:
            for ex in [e for e in self.paused if self.h2.outbound_buffered(e.stream_id) < LOW_WATER]:
                self.paused.discard(ex)
                ex.paused = False
                ex.handler.resume()
        if not self.h2.want_read and not self.h2.want_write:
            self.closing = True
            self.owner.close()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.flush()

    def connection_lost(self) -> None:
        self.closing = True
        streams, self.streams = self.streams, {}
        for ex in streams.values():
            if not ex.response_done:
                ex.handler.client_gone()
        self.h2.free()

    def receive_data(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error as exc:
            log.info("HTTP/2 protocol error: %s", exc)
            self.flush()
            self.closing = True
            self.owner.close()
            return
        for event in events:
            self._dispatch(event)
        self.flush()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, DataReceived):
            ex = self.streams.get(event.stream_id)
            if ex is None:
                self.h2.consume(event.stream_id, len(event.data))
                return
            if ex.request.record is not None:
                ex.request.record.received += len(event.data)
            ex.handler.body(event.data)
            if ex.body_paused:
                ex.unconsumed += len(event.data)
            else:
                self.h2.consume(event.stream_id, len(event.data))
            if event.end_stream:
                ex.handler.end(None)
        elif isinstance(event, TrailersReceived):
            ex = self.streams.get(event.stream_id)
            if ex is not None:
                ex.handler.end(event.headers)
        elif isinstance(event, StreamEnded):
            ex = self.streams.get(event.stream_id)
            if ex is not None:
                ex.handler.end(None)
        elif isinstance(event, StreamClosed):
            ex = self.streams.pop(event.stream_id, None)
            if ex is not None:
                self.paused.discard(ex)
                if not ex.response_done:
                    ex.handler.client_gone()
        elif isinstance(event, ConnectionTerminated):
            self.h2.close()

    def _request(self, event: RequestReceived) -> None:
        pseudo = {}
        headers = []
        for name, value in event.headers:
            if name in _PSEUDO:
                pseudo[name] = value
            else:
                headers.append((name, value))
        request = Request(pseudo.get(b":method", b"GET"), pseudo.get(b":path", b"/"), headers, "2",
                          pseudo.get(b":authority"), pseudo.get(b":scheme", b"https"), self.connection,
                          event.end_stream)
        ex = _Exchange2(self, event.stream_id, request)
        self.streams[event.stream_id] = ex
        ex.handler = self.app(request, ex)
        if event.end_stream:
            ex.handler.end(None)

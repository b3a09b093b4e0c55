"""The HTTP/1.1 server side of a client connection, parsed by httptools (llhttp), sans-I/O.

Theory of operation
-------------------
Bytes from the client go into :meth:`H1ServerConnection.receive_data`. Each request head
becomes a :class:`_Exchange1`, which is the request's :class:`~albatross.http.exchange.Responder`;
the application (``app(request, responder)``) returns the handler that receives the body.

Requests are answered strictly in order (pipelining): one exchange is active at a time;
requests that arrive behind it wait in a queue with their bodies, and reading from the client
pauses while the queue is full. When the active exchange's response is complete and its
request fully read, the next one starts. A response that finishes before its request body was
read ends the connection after it, since the rest of that body cannot be skipped safely.

The codec talks to its owner (the transport side) through four calls: ``send(bytes)``,
``close()``, ``pause_reading()``, ``resume_reading()``.

No httptools leniency is enabled. Limits follow ALB: a request line over 16 KiB is answered
with 414, a single header over 16 KiB or a header block over 64 KiB with 400; a parse error
gets 400 and the connection is closed after it. A rejected request is answered in its turn,
after the responses to the requests before it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httptools

from albatross.http.exchange import App, Handler, static
from albatross.http.messages import DATE, F_CONTENT_LENGTH, F_HOST, SERVER, Headers, Request, Response, has_date, reason
from albatross.http1.scan import FieldScan, scan_request

log = logging.getLogger("albatross.http")

MAX_REQUEST_LINE = 16 * 1024
MAX_HEADER = 16 * 1024
MAX_HEADER_BLOCK = 64 * 1024
MAX_QUEUED = 8  # pipelined requests waiting behind the active one before reading pauses
MAX_QUEUED_BODY = 256 * 1024
MAX_FAST_HEAD = 16 * 1024  # larger heads (complete or not) are read by the general parser

_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason(code)) for code in range(100, 600)}


class Owner(Protocol):
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class RequestRejected(Exception):
    """A request the front end answers itself (status and a short reason)."""

    def __init__(self, status: int, why: str) -> None:
        self.status = status
        self.why = why
        super().__init__(why)


def status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


def error_response(status: int, message: str) -> Response:
    """Albatross's own error page (small HTML, as ALB's)."""
    title = f"{status} {reason(status).decode()}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        f"<center>{message}</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    return Response(status, [(b"Server", SERVER), (b"Content-Type", b"text/html")], body)


def serialize(response: Response, *, head: bool, close: bool) -> bytes:
    """A whole response for a client that is not (or no longer) speaking through a codec."""
    out = [status_line(response.status), b"Date: " + DATE.value() + b"\r\n"]
    out += [name + b": " + value + b"\r\n" for name, value in response.headers]
    out.append(b"Content-Length: %d\r\n" % len(response.body))
    out.append(b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n")
    if not head:
        out.append(response.body)
    return b"".join(out)


class _Exchange1:
    """One request on an HTTP/1.1 connection, and the Responder for its response."""

    __slots__ = ("conn", "request", "handler", "keep_alive", "chunked", "head_sent", "response_done",
                 "request_done", "buffered", "buffered_bytes", "trailers", "app", "out")

    def __init__(self, conn: H1ServerConnection, request: Request, keep_alive: bool, app: App) -> None:
        self.conn = conn
        self.request = request
        self.keep_alive = keep_alive
        self.app = app
        self.handler: Handler | None = None
        self.chunked = False
        self.head_sent = False
        self.response_done = False
        self.request_done = False
        self.buffered: list[bytes] = []
        self.buffered_bytes = 0
        self.trailers: Headers | None = None
        self.out: list[bytes] = []  # response bytes gathered until flush(): one write per batch

    # -- request side (from the parser) ---------------------------------------------------------

    def start(self) -> None:
        self.handler = self.app(self.request, self)
        for chunk in self.buffered:
            self.handler.body(chunk)
        self.buffered = []
        if self.request_done:
            self.handler.end(self.trailers)

    def body(self, data: bytes) -> None:
        record = self.request.record
        if record is not None:
            record.received += len(data)
        if self.handler is not None:
            self.handler.body(data)
        else:
            self.buffered.append(data)
            self.buffered_bytes += len(data)

    def request_complete(self) -> None:
        self.request_done = True
        if self.handler is not None:
            self.handler.end(None)
            if self.response_done:
                self.conn._finished(self)

    # -- Responder ------------------------------------------------------------------------------

    def send_informational(self, status: int, headers: Headers) -> None:
        if self.head_sent or self.request.http_version == "1.0":
            return
        out = [status_line(status)] + [n + b": " + v + b"\r\n" for n, v in headers]
        self.conn.owner.send(b"".join(out) + b"\r\n")

    def send_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                  head_only: bool = False) -> None:
        out = [status_line(status)]
        if not has_date(headers):
            out.append(b"Date: " + DATE.value() + b"\r\n")
        out += [n + b": " + v + b"\r\n" for n, v in headers]
        self._finish_head(status, out, content_length, head_only)

    def send_head_raw(self, status: int, fields: bytes, *, has_date: bool, extra: Headers,
                      content_length: int | None = None, head_only: bool = False) -> None:
        """:meth:`send_head` for fields already in wire form (the target's end-to-end lines as
        received, from the fast path), then ``extra`` (Set-Cookie fields of stickiness)."""
        out = [status_line(status)]
        if not has_date:
            out.append(b"Date: " + DATE.value() + b"\r\n")
        out.append(fields)
        if extra:
            out += [n + b": " + v + b"\r\n" for n, v in extra]
        self._finish_head(status, out, content_length, head_only)

    def _finish_head(self, status: int, out: list[bytes], content_length: int | None, head_only: bool) -> None:
        """Framing and Connection fields after the fields in ``out``; the head is queued."""
        self.head_sent = True
        if not self.request_done:
            self.keep_alive = False  # the rest of the request body cannot be skipped safely
        if content_length is not None:
            out.append(b"Content-Length: %d\r\n" % content_length)
        elif not head_only and status not in (204, 304):
            if self.request.http_version == "1.1":
                self.chunked = True
                out.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # delimited by closing the connection
        if self.conn.closing:
            self.keep_alive = False
        out.append(b"Connection: keep-alive\r\n\r\n" if self.keep_alive else b"Connection: close\r\n\r\n")
        head = b"".join(out)
        self.out.append(head)
        record = self.request.record
        if record is not None:
            record.response_head(status, len(head))

    def send_body(self, data: bytes) -> None:
        if not data:
            return
        record = self.request.record
        if record is not None:
            record.sent += len(data)
        if self.chunked:
            self.out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self.out.append(data)

    def flush(self) -> None:
        """Write what send_head/send_body gathered, as one write (and one TLS record)."""
        if self.out:
            data = b"".join(self.out)
            self.out = []
            self.conn.owner.send(data)

    def end(self, trailers: Headers | None = None) -> None:
        if self.response_done:
            return
        if self.chunked:
            tail = b"".join(n + b": " + v + b"\r\n" for n, v in trailers or ())
            self.out.append(b"0\r\n" + tail + b"\r\n")
        self.flush()
        self.response_done = True
        if self.request.record is not None:
            self.request.record.finish()
        if self.request_done or not self.keep_alive:
            self.conn._finished(self)

    def abort(self) -> None:
        self.flush()  # what the client already got a head for goes out before the close
        self.response_done = True
        self.keep_alive = False
        if self.request.record is not None:
            self.request.record.finish()
        self.conn.abort()

    def send_upgrade(self, status: int, headers: Headers) -> None:
        """101 Switching Protocols: the head as the target sent it, then a raw tunnel."""
        self.head_sent = True
        self.keep_alive = False
        self.flush()
        out = [status_line(status)] + [n + b": " + v + b"\r\n" for n, v in headers]
        head = b"".join(out) + b"\r\n"
        self.conn.owner.send(head)
        self.conn.tunnel = self
        record = self.request.record
        if record is not None:  # logged when the tunnel opens (ALB logs WebSockets when they close)
            record.response_head(status, len(head))
            record.finish()

    def send_raw(self, data: bytes) -> None:
        if data:
            self.conn.owner.send(data)

    def pause_request_body(self) -> None:
        self.conn.set_body_paused(True)

    def resume_request_body(self) -> None:
        self.conn.set_body_paused(False)


class _FastSide:
    """The fast parser's callbacks: no per-field call; what the head needs is read once."""

    __slots__ = ("method", "url", "version", "keep_alive", "head_done", "message_done", "_parser")

    def __init__(self) -> None:
        self._parser: httptools.HttpRequestParser | None = None
        self.reset()

    def reset(self) -> None:
        self.url = b""
        self.method = b""
        self.version = "1.1"
        self.keep_alive = True
        self.head_done = self.message_done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self.method = parser.get_method()
        self.version = parser.get_http_version()
        self.keep_alive = parser.should_keep_alive()
        self.head_done = True

    def on_message_complete(self) -> None:
        self.message_done = True


class H1ServerConnection:
    """Parses requests from one client connection and answers them in order."""

    __slots__ = ("app", "owner", "scheme", "connection", "recorder", "closing", "_parser", "_url", "_headers",
                 "_header_bytes", "_current", "_active", "_queue", "_in_message", "_body_paused",
                 "_queue_paused", "requests_served", "tunnel", "_completed", "fast", "_general", "_buf",
                 "_fed", "_fast_parser", "_fast_side", "_body_left")

    def __init__(self, app: App, owner: Owner, *, scheme: bytes = b"https", connection: object = None,
                 recorder: Callable[[Request], None] | None = None, fast: bool = True) -> None:
        self.app = app
        self.owner = owner
        self.recorder = recorder  # gives a request its record (metrics, access log); rejections too
        self.scheme = scheme
        self.connection = connection
        self.closing = False
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: Headers = []
        self._header_bytes = 0
        self._current: _Exchange1 | None = None  # being parsed
        self._active: _Exchange1 | None = None  # being answered
        self._queue: deque[_Exchange1] = deque()
        self._in_message = False
        self._body_paused = False
        self._queue_paused = False
        self.requests_served = 0
        self.tunnel: _Exchange1 | None = None  # after 101 Switching Protocols: raw bytes both ways
        self._completed: _Exchange1 | None = None  # the last request parsed whole
        # The fast path (module docstring): heads gathered here, validated by a parser without
        # per-field callbacks; the general parser above takes over where it does not apply.
        self.fast = fast
        self._general = not fast  # the general parser owns the stream until a message boundary
        self._buf = b""  # a request head not yet complete
        self._fed = 0  # how much of _buf the fast parser has validated (and searched for the end)
        self._fast_side = _FastSide()
        self._fast_parser = self._fast_side._parser = httptools.HttpRequestParser(self._fast_side)
        self._body_left = 0  # Content-Length body bytes of the current fast request still to come

    # -- owner side -----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            if tunnel.handler is not None:
                tunnel.handler.tunnel_data(data)
            return
        if self.closing:
            return
        if self._general:
            self._feed_general(data)
        else:
            self._receive_fast(data)

    def _feed_general(self, data: bytes) -> None:
        """The general path: llhttp with a callback per field, then the same dispatch."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade(data[exc.args[0]:])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, RequestRejected):
                self._reject(cause.status, cause.why)
            else:
                log.exception("request handling failed")
                self._reject(500, "internal error")
        except httptools.HttpParserError as exc:
            if self._parser.get_method() == b"PRI":  # llhttp pauses on the HTTP/2 preface
                self._reject(505, "HTTP/2 connection preface on an HTTP/1.1 connection")
            else:
                self._reject(400, f"malformed request: {exc}")
        if self.fast and not self._in_message and self.tunnel is None:
            self._general = False  # at a message boundary: the next request may take the fast path

    # -- the fast path ------------------------------------------------------------------------

    def _receive_fast(self, data: bytes) -> None:
        """Gather heads, scan each in C, validate it with the callback-less parser, dispatch.

        Requests the fast path does not reproduce exactly (see :mod:`albatross.http1.scan`), a
        head llhttp refuses, or a head that grows past :data:`MAX_FAST_HEAD` go to the general
        parser from their first byte on, so whatever it answers is what it always answered.
        """
        if self._body_left:
            data = self._fast_body(data)
            if not data or self.closing:
                return
        buf = self._buf + data if self._buf else data
        pos, n = 0, len(buf)
        side = self._fast_side
        while pos < n:
            fed = self._fed  # bytes of this head the fast parser has already validated
            end = buf.find(b"\r\n\r\n", max(pos, pos + fed - 3))
            if end < 0:
                if n - pos > MAX_FAST_HEAD:
                    self._to_general(buf[pos:])
                    return
                # Validate what arrived now, so that garbage is refused as early as the general
                # parser would refuse it; the head is scanned once it is complete.
                if not fed:
                    side.reset()
                if not self._feed_fast(buf[pos + fed:]):
                    self._to_general(buf[pos:])
                    return
                self._fed = n - pos
                self._buf = buf[pos:] if pos else buf
                self._in_message = True
                return
            self._fed = 0
            head_end = end + 4
            line_end = buf.find(b"\r\n", pos)
            scan = scan_request(buf[line_end + 2:end + 2]) if head_end - pos <= MAX_FAST_HEAD else None
            if scan is not None:
                if not fed:
                    side.reset()
                if not self._feed_fast(buf[pos + fed:head_end]):
                    scan = None
            elif fed:  # the parser is inside this head: start the next one on a fresh parser
                self._fast_parser = side._parser = httptools.HttpRequestParser(side)
            if scan is None or not side.head_done:
                self._to_general(buf[pos:])
                return
            self._buf = b""
            self._dispatch_fast(scan)
            pos = head_end
            if self.closing:
                return
            if not side.message_done:
                cl = scan.get(F_CONTENT_LENGTH)
                self._body_left = int(cl) if cl is not None else 0
                if not self._body_left:  # llhttp waits for a body no field announced: not ours
                    self._reject(400, "request body without Content-Length")
                    return
                if pos < n:
                    rest = self._fast_body(buf[pos:] if pos else buf)
                    if self.closing or not rest:
                        return
                    buf, pos, n = rest, 0, len(rest)
                else:
                    return
        self._buf = b""
        self._in_message = False

    def _feed_fast(self, data: bytes) -> bool:
        """Give the callback-less parser part of a head; False if llhttp refuses it (or it asks
        for an upgrade, e.g. CONNECT): the general path then reads the head from its start."""
        try:
            self._fast_parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            side = self._fast_side
            self._fast_parser = side._parser = httptools.HttpRequestParser(side)
            return False
        return True

    def _to_general(self, data: bytes) -> None:
        self._buf = b""
        self._fed = 0
        self._general = True
        self._in_message = False
        self._feed_general(data)

    def _fast_body(self, data: bytes) -> bytes:
        """Feed the current request's Content-Length body; return what follows it."""
        take = self._body_left
        chunk, rest = (data, b"") if len(data) <= take else (data[:take], data[take:])
        self._body_left = take - len(chunk)
        side = self._fast_side
        try:
            self._fast_parser.feed_data(chunk)
        except httptools.HttpParserError as exc:  # pragma: no cover - llhttp counts as we do
            self._reject(400, f"malformed request: {exc}")
            return b""
        current = self._current
        if current is not None:
            current.body(chunk)
        if not self._body_left:
            if not side.message_done:  # pragma: no cover - llhttp counts as we do
                self._reject(400, "request body framing")
                return b""
            self._in_message = False
            self._current = None
            self._completed = current
            if current is not None:
                current.request_complete()
        return rest

    def _dispatch_fast(self, scan: FieldScan) -> None:
        side = self._fast_side
        request = Request(side.method, side.url, None, side.version, scan.get(F_HOST), self.scheme,
                          self.connection, raw=scan)  # type: ignore[arg-type]  # ConnectionInfo, typed object here
        exchange = _Exchange1(self, request, side.keep_alive, self.app)
        if side.message_done:
            exchange.request_done = True
            self._completed = exchange
            self._current = None
            self._in_message = False
        else:
            self._current = exchange
            self._in_message = True
        self._enqueue(exchange)

    def _upgrade(self, rest: bytes) -> None:
        """llhttp stopped after a request asking for an upgrade. A WebSocket handshake that the
        handler forwards waits for the target's 101 (bytes after it go into the tunnel); any other
        upgrade (``h2c``, ...) is ignored and the connection goes on as HTTP/1.1."""
        ex = self._completed
        if ex is not None and ex.handler is not None and ex.handler.wants_tunnel():
            self.closing = True  # no more HTTP on this connection, whatever the target says
            self.tunnel = ex
            if rest:
                ex.handler.tunnel_data(rest)
            return
        self._parser = httptools.HttpRequestParser(self)
        if rest:
            self.receive_data(rest)

    def idle(self) -> bool:
        """True between requests (nothing partially received, nothing being answered)."""
        return not self._in_message and self._active is None

    def request_timeout(self) -> None:
        """The client sent nothing for the idle timeout while a request was half received: 408.

        A request that was received whole and waits for its target is left alone (the target
        side answers 504 if the target is the one that stalls).
        """
        if not self._in_message:
            return
        current, self._current = self._current, None
        self._in_message = False
        self._buf = b""
        self._fed = 0
        self._body_left = 0
        record = None
        if current is not None and current is self._active:
            self._active = None
            if not current.head_sent:  # its log line is the 408, not the handler's 460
                record, current.request.record = current.request.record, None
            if current.handler is not None:
                current.handler.client_gone()
            if current.head_sent:
                self.abort()
                return
        self._reject(408, "the request was not complete within the idle timeout", record)

    def pause_writing(self) -> None:
        if self._active is not None and self._active.handler is not None:
            self._active.handler.pause()

    def resume_writing(self) -> None:
        if self._active is not None and self._active.handler is not None:
            self._active.handler.resume()

    def connection_lost(self) -> None:
        self.closing = True
        active, self._active = self._active, None
        if active is not None and active.handler is not None and not active.response_done:
            active.handler.client_gone()
        self._queue.clear()

    def abort(self) -> None:
        self.closing = True
        self.owner.close()

    def set_body_paused(self, paused: bool) -> None:
        self._body_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        if self._body_paused or self._queue_paused:
            self.owner.pause_reading()
        else:
            self.owner.resume_reading()

    # -- exchanges ------------------------------------------------------------------------------

    def _reject(self, status: int, why: str, record: object = None) -> None:
        log.info("rejecting request with %d: %s", status, why)
        # No usable request line: the access log writes "- - -", as ALB does.
        request = Request(b"", b"", [], "1.1", None, self.scheme, self.connection)
        page = error_response(status, why)
        exchange = _Exchange1(self, request, False, static(lambda _r: page))
        exchange.request_done = True
        broken, self._current = self._current, None
        self.closing = True  # nothing after a rejected request is read
        if broken is not None and broken is self._active and not broken.head_sent:
            record, broken.request.record = broken.request.record, None  # logged once, as this rejection
        if record is not None:
            request.record = record  # the line names the real request
        elif self.recorder is not None:
            self.recorder(request)
        if broken is not None and broken is self._active:
            # The request being answered turned out malformed (its body): it ends here.
            self._active = None
            if broken.handler is not None:
                broken.handler.client_gone()
            if broken.head_sent:
                self.abort()
                return
        self._enqueue(exchange)

    def _enqueue(self, exchange: _Exchange1) -> None:
        if self._active is None:
            self._active = exchange
            exchange.start()
        else:
            self._queue.append(exchange)
            queued_bytes = sum(e.buffered_bytes for e in self._queue)
            if len(self._queue) >= MAX_QUEUED or queued_bytes > MAX_QUEUED_BODY:
                self._queue_paused = True
                self._update_reading()

    def _finished(self, exchange: _Exchange1) -> None:
        if exchange is not self._active:
            return
        self._active = None
        self.requests_served += 1
        if not exchange.keep_alive:
            self.closing = True
            self._queue.clear()
            self.owner.close()
            return
        if self._queue:
            nxt = self._queue.popleft()
            if self._queue_paused and len(self._queue) < MAX_QUEUED:
                self._queue_paused = False
                self._update_reading()
            self._active = nxt
            nxt.start()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._url = b""
        self._headers = []
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_REQUEST_LINE:
            raise RequestRejected(414, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        if size > MAX_HEADER:
            raise RequestRejected(400, "request header too large")
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BLOCK:
            raise RequestRejected(400, "request headers too large")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        authority = next((v for n, v in self._headers if n.lower() == b"host"), None)
        request = Request(parser.get_method(), self._url, self._headers, parser.get_http_version(), authority,
                          self.scheme, self.connection)
        self._current = _Exchange1(self, request, parser.should_keep_alive(), self.app)
        if not self.closing:
            self._enqueue(self._current)

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        current, self._current = self._current, None
        self._completed = current
        if current is not None:
            current.request_complete()

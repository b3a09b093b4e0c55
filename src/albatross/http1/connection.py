"""The HTTP/1.1 server side of a client connection, parsed by httptools (llhttp), sans-I/O.

Bytes from the client go into :meth:`H1ServerConnection.receive_data`; complete requests
are handed to the application callable, whose responses are serialized and passed to the
``send`` callable in request order (pipelining). The caller owns the transport and reads
:attr:`H1ServerConnection.must_close` after each call.

No httptools leniency is enabled. Limits follow ALB: a request line over 16 KiB is answered
with 414, a single header over 16 KiB or a header block over 64 KiB with 400; any parse error
gets 400 and the connection is closed after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httptools

from albatross.http.messages import DATE, SERVER, Headers, Request, Response, reason

log = logging.getLogger("albatross.http")

MAX_REQUEST_LINE = 16 * 1024
MAX_HEADER = 16 * 1024
MAX_HEADER_BLOCK = 64 * 1024

App = Callable[[Request], Response]
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason(code)) for code in range(100, 600)}


class RequestRejected(Exception):
    def __init__(self, status: int, why: str) -> None:
        self.status = status
        self.why = why
        super().__init__(why)


def serialize(response: Response, *, head: bool, close: bool) -> bytes:
    """Status line, headers (Date, Server, Content-Length, Connection added) and body."""
    out = [
        _STATUS_LINES.get(response.status) or b"HTTP/1.1 %d \r\n" % response.status,
        b"Date: " + DATE.value() + b"\r\nServer: " + SERVER + b"\r\n",
    ]
    for name, value in response.headers:
        out.append(name + b": " + value + b"\r\n")
    out.append(b"Content-Length: %d\r\n" % len(response.body))
    out.append(b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n")
    if not head and response.status >= 200 and response.status not in (204, 304):
        out.append(response.body)
    return b"".join(out)


def error_response(status: int, message: str) -> Response:
    body = (
        f"<html>\r\n<head><title>{status} {reason(status).decode()}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason(status).decode()}</h1></center>\r\n"
        f"<center>{message}</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
    return Response(status, [(b"Content-Type", b"text/html")], body)


class H1ServerConnection:
    """Parses requests from one client connection and answers them in order."""

    __slots__ = ("app", "send", "scheme", "connection", "must_close", "_parser", "_url", "_headers",
                 "_header_bytes", "_requests", "requests_served", "_in_message")

    def __init__(self, app: App, send: Callable[[bytes], None], *, scheme: bytes = b"https",
                 connection: object = None) -> None:
        self.app = app
        self.send = send
        self.scheme = scheme
        self.connection = connection
        self.must_close = False
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: Headers = []
        self._header_bytes = 0
        self._requests: list[Request] = []
        self.requests_served = 0
        self._in_message = False

    def idle(self) -> bool:
        """True between requests (nothing partially received)."""
        return not self._in_message

    def connection_lost(self) -> None:
        self._requests.clear()

    def receive_data(self, data: bytes) -> None:
        if self.must_close:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "protocol upgrade is not supported here")
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

    def _reject(self, status: int, why: str) -> None:
        log.info("rejecting request with %d: %s", status, why)
        self.send(serialize(error_response(status, why), head=False, close=True))
        self.must_close = True

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
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        version = parser.get_http_version()
        authority = next((v for n, v in self._headers if n == b"host"), None)
        self._requests.append(Request(parser.get_method(), self._url, self._headers, version, authority, self.scheme, self.connection))

    def on_message_complete(self) -> None:
        self._in_message = False
        request = self._requests.pop(0)
        keep_alive = self._parser.should_keep_alive()
        if self.must_close:
            return
        response = self.app(request)
        close = not keep_alive
        self.send(serialize(response, head=request.method == b"HEAD", close=close))
        self.requests_served += 1
        if close:
            self.must_close = True

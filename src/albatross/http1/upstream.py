"""Reading HTTP/1.1 responses from a target connection, sans-I/O, on httptools (llhttp).

Theory of operation. One :class:`ResponseReader` lives as long as one target connection. The
caller announces each request with :meth:`ResponseReader.expect` before writing it, feeds every
byte read from the target to :meth:`~ResponseReader.receive_data` and gets events back:
:class:`InformationalResponse` (100, 103, ...), then :class:`ResponseStarted`, zero or more
:class:`BodyReceived` (dechunked), maybe :class:`TrailersReceived`, then :class:`ResponseEnded`;
or :class:`Upgraded` for a 101, after which the connection is a byte tunnel. When the target
closes, :meth:`~ResponseReader.end_of_input` ends a read-until-close body or raises. Any
:class:`UpstreamProtocolError` means: answer 502 to the client and close the target connection.

llhttp validates everything (no leniency flag is ever set): status line, field syntax, CL+TE,
duplicate Content-Length, chunk syntax. llhttp cannot be told that a response answers HEAD, so
it would wait for the body a Content-Length announces. For HEAD the reader therefore finds the
end of each head itself (one ``find`` per read; llhttp's strict CRLF rules make the first
CRLFCRLF the end), feeds llhttp the head alone, ends the message there, and replaces the parser
before the next request. 1xx, 204 and 304 llhttp handles itself. The parser is reused otherwise
(creating one costs about 1 µs).

Decisions:

* Response ``Transfer-Encoding`` other than exactly ``chunked`` (e.g. ``gzip, chunked``, or two
  TE lines) → 502: the reader dechunks, and no other coding could be forwarded faithfully.
* A 101 is accepted only after ``expect(..., upgrade=True)``; otherwise 502.
* The header block limit (32 KiB, ALB §5.7 → 502) counts the status line and every field as
  ``name + value + 4``; while the head is incomplete the raw bytes fed are counted too, so at
  most one read beyond the limit is ever buffered inside httptools.
* Trailers: httptools reports trailer fields through ``on_header`` after the last chunk; they
  come out as :class:`TrailersReceived` before :class:`ResponseEnded`, counted in the same limit.
* Bytes after a complete response (a target must not send any) make the connection not
  :attr:`~ResponseReader.reusable`; they are discarded, the response already read stands.
  So are bytes arriving while no request is outstanding (e.g. an unsolicited 408).
* A HEAD response without Content-Length/Transfer-Encoding is reported ``keep_alive=False``
  (llhttp's reading; the connection is then closed, never misread).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httptools

from albatross.http.messages import F_CONTENT_LENGTH, fields_of
from albatross.http1.scan import FieldScan, scan_response

__all__ = [
    "BodyReceived",
    "InformationalResponse",
    "ResponseEnded",
    "ResponseReader",
    "ResponseStarted",
    "TrailersReceived",
    "Upgraded",
    "UpstreamClosed",
    "UpstreamProtocolError",
    "response_headers_for_h2",
    "serialize_response_head",
]

Headers = list[tuple[bytes, bytes]]


class UpstreamProtocolError(Exception):
    """The target broke HTTP/1.1 (or the limits): answer 502 and close the target connection."""

    status = 502


class UpstreamClosed(UpstreamProtocolError):
    """The target closed before the response was complete."""

    def __init__(self, message: str, *, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started
        """False when not one byte of the response arrived (a keep-alive race, maybe retryable)."""


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """A 1xx other than 101 (100 Continue, 103 Early Hints); the final response follows."""

    status: int
    """The 1xx status code."""
    headers: Headers
    """Fields as received (names in their original case)."""


class ResponseStarted:
    """The final response's head.

    A head read by the fast path carries its raw field block in ``raw`` (a
    :class:`~albatross.http1.scan.FieldScan`, whose ``kept`` lines are the end-to-end fields,
    ready to pass through); ``headers`` is then built from it only when asked for.
    """

    __slots__ = ("status", "reason", "_headers", "http_version", "keep_alive", "framing", "content_length", "raw")

    def __init__(self, status: int, reason: bytes, headers: Headers | None, http_version: str, keep_alive: bool,
                 framing: str, content_length: int | None, raw: FieldScan | None = None) -> None:
        self.status = status  # 200-599
        self.reason = reason  # reason phrase as received (may be empty)
        self._headers = headers  # names in their original case, hop-by-hop fields included
        self.http_version = http_version  # "1.0" or "1.1"
        self.keep_alive = keep_alive  # the target lets the connection carry another request
        # length | chunked | close (body until the target closes) | none (HEAD, 1xx, 204, 304)
        self.framing = framing
        self.content_length = content_length  # also for ``none``, e.g. a HEAD answer
        self.raw = raw

    @property
    def headers(self) -> Headers:
        return fields_of(self)

    def _key(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.headers, self.http_version, self.keep_alive, self.framing,
                self.content_length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseStarted):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable fields: not hashable, as a dataclass with eq

    def __repr__(self) -> str:
        return "ResponseStarted(%r, %r, %r, %r, %r, %r, %r)" % self._key()


@dataclass(frozen=True, slots=True)
class BodyReceived:
    """A piece of the body, dechunked."""

    data: bytes
    """Body bytes."""


@dataclass(frozen=True, slots=True)
class TrailersReceived:
    """Trailer fields after a chunked body."""

    headers: Headers
    """Trailer fields as received."""


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    """The response is complete; see :attr:`ResponseReader.reusable`."""


@dataclass(frozen=True, slots=True)
class Upgraded:
    """101 Switching Protocols: from now on the connection is a tunnel."""

    status: int
    """101."""
    headers: Headers
    """Fields as received."""
    rest: bytes
    """Bytes the target sent after the head: the first bytes of the tunnel."""
    reason: bytes = b""
    """Reason phrase as received."""


Event = InformationalResponse | ResponseStarted | BodyReceived | TrailersReceived | ResponseEnded | Upgraded

_ENDED = ResponseEnded()
_new = object.__new__
# Hot-path constructor. A frozen dataclass's __init__ goes through object.__setattr__ once per
# field; writing the slot through its member descriptor builds an equal, still immutable object
# in half the time.
_body_set = BodyReceived.data.__set__  # type: ignore[attr-defined]


def _body(data: bytes) -> BodyReceived:
    event = _new(BodyReceived)
    _body_set(event, data)
    return event

_IDLE, _HEAD, _BODY, _UPGRADED, _CLOSED, _FAILED = range(6)
MAX_FAST_HEAD = 16 * 1024  # larger heads are read by the general parser


class _FastResponseSide:
    """The fast parser's callbacks: no per-field call; the head's end is only noted."""

    __slots__ = ("reader", "parser", "head_done", "message_done", "in_head", "status", "version", "keep_alive")

    def __init__(self, reader: ResponseReader) -> None:
        self.reader = reader
        self.head_done = self.message_done = self.in_head = self.keep_alive = False
        self.status = 0
        self.version = "1.1"
        self.parser = self.new_parser()

    def new_parser(self) -> httptools.HttpResponseParser:
        self.parser = httptools.HttpResponseParser(self)
        return self.parser

    def on_message_begin(self) -> None:
        self.reader.on_message_begin()  # bytes nobody asked for stop the parser there

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.status = parser.get_status_code()
        self.version = parser.get_http_version()
        self.keep_alive = parser.should_keep_alive()  # llhttp's reading is reset once the message ends
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.reader._events.append(_body(body))

    def on_message_complete(self) -> None:
        if self.in_head:  # reported after the head's event, by the reader
            self.message_done = True
        else:
            self.reader.on_message_complete()


class _ExtraData(Exception):
    """Raised from ``on_message_begin`` to stop llhttp at bytes nobody asked for."""


class ResponseReader:
    """Parses the responses of one target connection; see the module docstring."""

    __slots__ = ("_fast", "_fast_side", "_fast_msg", "_try_fast", "_fast_limit", "_max", "_parser", "_parser_dirty", "_state", "_head_only", "_upgrade_ok", "_events",
                 "_status", "_reason", "_headers", "_trailers", "_head_size", "_head_fed", "_tail",
                 "_cl", "_te", "_keep_alive", "_framing", "_clean", "_seen_bytes", "_error")

    def __init__(self, *, max_header_bytes: int = 32 * 1024, fast: bool = True) -> None:
        self._max = max_header_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._parser_dirty = False
        # The fast path (see _fast_head): a parser without per-field callbacks, used for a
        # response whose head arrives whole in one read and scans as canonical.
        self._fast_side = _FastResponseSide(self) if fast else None
        self._fast = self._fast_side.parser if self._fast_side is not None else None
        self._fast_msg = False  # the current response is being read by the fast parser
        self._try_fast = self._fast is not None  # the next response may take the fast path
        # The general parser's limit counts name + value + 4 per field: a raw head of half the
        # limit is always within it, so the fast path never accepts what the limit refuses.
        self._fast_limit = min(MAX_FAST_HEAD, max_header_bytes // 2)
        self._state = _IDLE
        self._head_only = self._upgrade_ok = False
        self._events: list[Event] = []
        self._keep_alive = self._clean = True
        self._framing = "none"
        self._error: UpstreamProtocolError | None = None
        self._seen_bytes = False
        self._reset_head()

    def _reset_head(self) -> None:
        self._status = self._head_size = self._head_fed = 0
        self._reason = self._tail = b""
        self._headers: Headers = []
        self._trailers: Headers | None = None
        self._cl = self._te = None

    # -- public API -------------------------------------------------------------------------------

    def expect(self, method: bytes, *, upgrade: bool = False, pass_through: bool = True) -> None:
        """Announce the next request (call before writing it); ``upgrade`` allows a 101.

        ``pass_through=False`` reads this response on the general parser even where the fast
        path would apply: a caller that needs the field list anyway (an HTTP/2 client's answer)
        gets it from llhttp's callbacks rather than from splitting the raw block afterwards."""
        if not self.reusable:
            raise RuntimeError("the connection cannot carry another request")
        if self._parser_dirty:
            self._parser = httptools.HttpResponseParser(self)
            if self._fast_side is not None:
                self._fast = self._fast_side.new_parser()
            self._parser_dirty = False
        self._fast_msg = False
        self._try_fast = pass_through and self._fast is not None
        self._trailers = self._cl = self._te = None
        self._head_fed = 0
        self._seen_bytes = False
        self._state = _HEAD
        self._head_only = method == b"HEAD"
        self._upgrade_ok = upgrade

    @property
    def reusable(self) -> bool:
        """After :class:`ResponseEnded`: the connection may carry another request."""
        return self._state == _IDLE and self._clean and self._keep_alive

    def receive_data(self, data: bytes) -> list[Event]:
        """Bytes read from the target → events. Raises :class:`UpstreamProtocolError`."""
        state = self._state
        if state != _HEAD and state != _BODY:
            if state == _IDLE or state == _CLOSED:
                if data:
                    self._clean = False  # nobody asked: the connection is unusable
                return []
            self._raise_state()
        events = self._events = []
        if data:
            self._seen_bytes = True
            if state == _HEAD and self._head_only:
                self._feed_head_only(data)
            elif state != _HEAD or self._head_fed or not self._try_fast or not self._fast_head(data):
                self._feed(data)
        return events

    def end_of_input(self) -> list[Event]:
        """The target closed (FIN). Ends a read-until-close body; raises mid-response."""
        state = self._state
        self._keep_alive = False
        if state == _BODY and self._framing == "close":
            self._state = _CLOSED
            return [_ENDED]
        if state == _HEAD or state == _BODY:
            self._fail(UpstreamClosed("closed before the response was complete", response_started=self._seen_bytes))
        if state == _FAILED or state == _UPGRADED:
            self._raise_state()
        self._state = _CLOSED
        return []

    # -- feeding ----------------------------------------------------------------------------------

    def _fast_head(self, data: bytes) -> bool:
        """The fast path: a whole head in this read, canonical, no Transfer-Encoding, 2xx-5xx.

        llhttp validates it without a callback per field; the event carries the scanned block
        (its ``kept`` lines pass through to an HTTP/1.1 client as they are). False leaves the
        read to the general parser from its first byte (nothing was reported yet).
        """
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self._fast_limit:
            return False
        line_end = data.find(b"\r\n")
        scan = scan_response(data[line_end + 2:end + 2])
        if scan is None:
            return False
        parser = self._fast
        side = self._fast_side
        assert parser is not None and side is not None
        side.head_done = side.message_done = False
        side.in_head = True
        try:
            parser.feed_data(data[:end + 4])
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fast = side.new_parser()
            return False
        finally:
            side.in_head = False
        status = side.status
        if not side.head_done or status < 200:  # 1xx: the general parser reads it and what follows
            self._fast = side.new_parser()
            return False
        cl_value = scan.get(F_CONTENT_LENGTH)
        cl = None if cl_value is None else int(cl_value)  # llhttp has validated it
        framing = "none" if status == 204 or status == 304 else "length" if cl is not None else "close"
        keep_alive = self._keep_alive = side.keep_alive and framing != "close"
        self._framing = framing
        self._status = status
        self._state = _BODY
        self._fast_msg = True
        self._events.append(ResponseStarted(status, data[13:line_end], None, side.version, keep_alive,
                                            framing, cl, scan))
        if side.message_done:
            self._end_message()
        if end + 4 < len(data):
            self._feed(data[end + 4:])
        return True

    def _feed(self, data: bytes) -> None:
        try:
            (self._fast if self._fast_msg else self._parser).feed_data(data)  # type: ignore[union-attr]
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[exc.args[0]:])
        except httptools.HttpParserCallbackError as exc:
            self._parser_dirty = True
            cause = exc.__context__
            if isinstance(cause, _ExtraData):
                self._clean = False
            elif isinstance(cause, UpstreamProtocolError):
                self._fail(cause)
            else:
                raise
        except httptools.HttpParserError as exc:
            self._parser_dirty = True
            if self._state == _IDLE:  # the response was complete; what followed is garbage
                self._clean = False
            else:
                self._fail(UpstreamProtocolError(f"malformed response from the target: {exc}"))
        if self._state == _HEAD:
            self._head_fed += len(data)
            if self._head_fed > self._max:
                self._fail(UpstreamProtocolError("response header block larger than the limit"))

    def _feed_head_only(self, data: bytes) -> None:
        """HEAD: give llhttp one head at a time and end the message at its last CRLF."""
        while data and self._state == _HEAD:
            buf = self._tail + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._tail = buf[-3:]
                self._feed(data)
                return
            cut = end + 4 - len(self._tail)
            self._tail = b""
            self._feed(data[:cut])
            data = data[cut:]
            if self._state == _BODY:  # llhttp waits for a body a HEAD response never has
                self._parser_dirty = True
                self._end_message()
        if data and self._state == _IDLE:
            self._clean = False

    def _upgraded(self, rest: bytes) -> None:
        self._state = _UPGRADED
        self._parser_dirty = True
        self._events.append(Upgraded(self._status, self._headers, rest, self._reason))

    def _end_message(self) -> None:
        if self._trailers:
            self._events.append(TrailersReceived(self._trailers))
        self._events.append(_ENDED)
        self._state = _IDLE

    def _fail(self, error: UpstreamProtocolError) -> None:
        self._state = _FAILED
        self._error = error
        self._keep_alive = False
        raise error

    def _raise_state(self) -> None:
        if self._state == _UPGRADED:
            raise RuntimeError("the connection was upgraded; relay its bytes directly")
        raise UpstreamProtocolError("the target connection already failed") from self._error

    # -- httptools callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._state != 1:  # _HEAD
            raise _ExtraData
        self._reason = b""
        self._headers = []
        self._head_size = 0

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        self._head_size += len(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        n = len(name)
        size = self._head_size = self._head_size + n + len(value) + 4
        if size > self._max:
            raise UpstreamProtocolError("response header block larger than the limit")
        if self._state == 2:  # _BODY: trailer fields
            if self._trailers is None:
                self._trailers = []
            self._trailers.append((name, value))
            return
        self._headers.append((name, value))
        if n == 14 or n == 17:
            lower = name.lower()
            if lower == b"content-length":
                self._cl = value
            elif lower == b"transfer-encoding":
                if self._te is not None:
                    raise UpstreamProtocolError("more than one Transfer-Encoding in the response")
                self._te = value

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = self._status = parser.get_status_code()
        if status < 200:
            if status == 101 and not self._upgrade_ok:
                raise UpstreamProtocolError("101 Switching Protocols without an upgrade request")
            return
        te = self._te
        if te is not None and te.strip(b" \t").lower() != b"chunked":
            raise UpstreamProtocolError(f"unsupported Transfer-Encoding {te[:64]!r} in the response")
        cl = None if self._cl is None else int(self._cl)  # llhttp has validated it
        if self._head_only or status == 204 or status == 304:
            framing = "none"
        else:
            framing = "chunked" if te is not None else "length" if cl is not None else "close"
        keep_alive = self._keep_alive = parser.should_keep_alive() and framing != "close"
        self._framing = framing
        self._state = _BODY
        self._events.append(ResponseStarted(status, self._reason, self._headers, parser.get_http_version(),
                                            keep_alive, framing, cl))

    def on_body(self, body: bytes) -> None:
        self._events.append(_body(body))

    def on_message_complete(self) -> None:
        status = self._status
        if status >= 200:
            self._end_message()
        elif status != 101:  # 1xx: the final response follows on the same parser
            self._events.append(InformationalResponse(status, self._headers))
            self._reset_head()


# -- serializing for the client ---------------------------------------------------------------

_R_PLAIN, _R_CONN, _R_DROP, _R_CL, _R_TRAILER, _R_UPGRADE = range(6)
_RESPONSE_KINDS = {
    b"connection": _R_CONN, b"keep-alive": _R_DROP, b"proxy-connection": _R_DROP, b"te": _R_DROP,
    b"transfer-encoding": _R_DROP, b"http2-settings": _R_DROP, b"upgrade": _R_UPGRADE,
    b"content-length": _R_CL, b"trailer": _R_TRAILER,
}
_RESPONSE_NAME_CACHE: dict[bytes, tuple[bytes, int]] = {}
_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}


def _response_kind(name: bytes) -> tuple[bytes, int]:
    entry = _RESPONSE_NAME_CACHE.get(name)
    if entry is None:
        lower = name.lower()
        entry = (lower, _RESPONSE_KINDS.get(lower, _R_PLAIN))
        if len(_RESPONSE_NAME_CACHE) < 4096:
            _RESPONSE_NAME_CACHE[name] = entry
    return entry


def _connection_listed(value: bytes) -> frozenset[bytes]:
    """End-to-end field names a Connection value lists (close/keep-alive/upgrade excluded)."""
    tokens = frozenset(t.strip(b" \t").lower() for t in value.split(b","))
    return tokens - {b"", b"close", b"keep-alive", b"upgrade", b"content-length"}


def _forwardable(headers: Headers, keep_cl: bool, keep_trailer: bool, keep_upgrade: bool,
                 listed: frozenset[bytes]) -> tuple[list[bytes], frozenset[bytes]]:
    """One pass: (pieces name, ": ", value, CRLF of the fields to forward, names Connection lists)."""
    out: list[bytes] = []
    connection = None
    get = _RESPONSE_NAME_CACHE.get
    for name, value in headers:
        entry = get(name)
        if entry is None:
            entry = _response_kind(name)
        kind = entry[1]
        if not kind:  # _R_PLAIN
            if listed and entry[0] in listed:
                continue
        elif kind == 3:  # _R_CL
            if not keep_cl:
                continue
        elif kind == 4:  # _R_TRAILER
            if not keep_trailer:
                continue
        elif kind == 1:  # _R_CONN
            connection = value if connection is None else connection + b"," + value
            continue
        elif kind != 5 or not keep_upgrade:  # hop-by-hop, or Upgrade outside a 101
            continue
        out += (name, b": ", value, b"\r\n")
    return out, (_connection_listed(connection) if connection is not None else frozenset())


def serialize_response_head(event: ResponseStarted | Upgraded, *, client_http_version: str, keep_alive: bool,
                            framing_to_client: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """Status line and fields for an HTTP/1.x client.

    Hop-by-hop fields (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE,
    Transfer-Encoding, Upgrade) are removed; Content-Length is kept when ``framing_to_client``
    is ``length`` or ``none``, Trailer only when it is ``chunked`` (the only framing that can
    carry trailers), and ``Transfer-Encoding: chunked`` is added for ``chunked``. ``Connection:
    keep-alive``/``close`` follows ``keep_alive`` (the caller's decision). A 101 keeps its
    Upgrade field and gets ``Connection: upgrade``. ``extra_headers`` go last.
    """
    if framing_to_client == "chunked" and client_http_version == "1.0":
        raise ValueError("an HTTP/1.0 client cannot receive a chunked body")
    status, reason = event.status, event.reason
    line = _STATUS_LINES.get((status, reason))
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < 512:
            _STATUS_LINES[(status, reason)] = line
    upgrade = status == 101
    chunked = framing_to_client == "chunked"
    keep_cl = framing_to_client == "length" or framing_to_client == "none"
    out, listed = _forwardable(event.headers, keep_cl, chunked, upgrade, frozenset())
    if listed:  # Connection named end-to-end fields: rare, redo the pass without them
        out, _ = _forwardable(event.headers, keep_cl, chunked, upgrade, listed)
    out.insert(0, line)
    if chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    if upgrade:
        out.append(b"Connection: upgrade\r\n\r\n")
    else:
        out.append(b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    if extra_headers:
        out[-1] = out[-1][:-2]
        for name, value in extra_headers:
            out += (name, b": ", value, b"\r\n")
        out.append(b"\r\n")
    return b"".join(out)


def response_headers_for_h2(event: ResponseStarted) -> Headers:
    """The response fields for an HTTP/2 client: lower-case names, connection-specific fields
    (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding,
    Upgrade, HTTP2-Settings) removed; no ``:status`` (the caller passes the status)."""
    out: Headers = []
    connection = None
    for name, value in event.headers:
        lower, kind = _RESPONSE_NAME_CACHE.get(name) or _response_kind(name)
        if kind == _R_PLAIN or kind == _R_CL or kind == _R_TRAILER:
            out.append((lower, value))
        elif kind == _R_CONN:
            connection = value if connection is None else connection + b"," + value
    if connection is not None:
        listed = _connection_listed(connection)
        if listed:
            out = [(n, v) for n, v in out if n not in listed]
    return out

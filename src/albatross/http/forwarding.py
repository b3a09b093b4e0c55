"""Turning a client's request head into the request head a target receives (ALB §4/§5), sans-I/O.

This module is the reference for how Albatross reproduces ALB's request handling; ``docs/
forwarding.md`` has the same decisions as a table. Two pure functions do the work:

* :func:`check_request_framing` decides how the body is delimited, rejecting anything that two
  HTTP parsers could read differently (request smuggling), before a single byte is forwarded;
* :func:`build_target_request` writes the HTTP/1.1 head for the target in one pass over the
  header list, then checks the finished bytes once for CR/LF/NUL injection.

Both raise :class:`RequestRejected` carrying the status ALB would answer.

Decisions (ALB source → Albatross; **[?]** marks our own decision where no source settles it):

Desync (§4.3). Albatross always applies ALB's ``strictest`` mode to body framing; the
``desync_mitigation_mode`` attribute is accepted and logged but never loosens these rules:

* ``Content-Length`` together with ``Transfer-Encoding`` → 400 (``BothTeClPresent``).
* More than one ``Content-Length`` line, *even with identical values*, or a comma list → 400.
  ALB's http_desync_guardian calls identical duplicates ``DuplicateContentLength`` (Ambiguous:
  forwarded, then both connections closed, in ``defensive``); ``strictest`` blocks them, so do we.
* ``Content-Length`` that is not 1*DIGIT (sign, space, hex, empty) or has more than 18 digits → 400.
* ``Transfer-Encoding``: exactly ``chunked`` (case-insensitive, surrounding OWS) → chunked;
  exactly ``identity`` → as if absent (§5.7 lists it as accepted) **[?]**; a list of plain
  codings without chunked/identity (``gzip``, ``gzip, deflate``) → 501 (§5.7 "anything else →
  501"); everything else — ``chunked, identity``, ``gzip, chunked``, ``xchunked``, quoted,
  control characters, more than one TE line — → 400 (``BadTransferEncoding``/obfuscation).
  Note: llhttp (our HTTP/1.1 front end, no leniency) rejects every request TE other than a
  list ending in chunked *after* ``on_headers_complete``, so run this check there to keep 501.
* ``Transfer-Encoding`` on an HTTP/1.0 request → 400 (guardian: Ambiguous).
* GET/HEAD with ``Transfer-Encoding`` or a non-zero ``Content-Length`` → 400
  (``UndefinedContentLength/TransferEncodingSemantics``, Ambiguous → blocked in strictest).
  ``Content-Length: 0`` on GET/HEAD is Acceptable and forwarded.
* Header names that are not RFC 9110 tokens (whitespace before the colon, a line starting with
  SP/HT i.e. obs-fold, CTL, non-ASCII such as a dotless ı) → 400; names that normalise to
  Content-Length/Transfer-Encoding (``Transfer_Encoding``) → 400 (``SuspiciousHeader``).
  Values and the request target with CR, LF or NUL → 400, checked once on the finished bytes.
* ``TRACE`` → 405 (§5.7); ``CONNECT`` → 405 **[?]** (ALB proxies no tunnels).

Headers (§5):

* Always HTTP/1.1 and persistent towards the target: no ``Connection`` header is sent, except
  ``Connection: upgrade`` + ``Upgrade: websocket`` for a WebSocket handshake (GET, HTTP/1.1,
  ``Upgrade: websocket`` and ``upgrade`` among the Connection tokens).
* Hop-by-hop fields are removed: Connection and every field it names, Keep-Alive,
  Proxy-Connection, TE, Transfer-Encoding (re-added as ``chunked`` when the framing is
  chunked), Upgrade (any value but a WebSocket handshake; ``h2c`` never passes), HTTP2-Settings.
  Connection cannot remove the fields Albatross manages itself (Host, Content-Length,
  Transfer-Encoding, X-Forwarded-*, X-Amzn-Trace-Id): those follow their own rules **[?]**.
* ``Host`` (§5.4). preserve_host on: as received (for absolute-form, the Host header; the URL's
  host only when there is no Host header). Off: the absolute-form URL's host, else the Host
  header, else ``:authority`` for HTTP/2; then on listener ports 80/443 any port is removed, on
  other ports ``:<listener port>`` is appended when no port is given. HTTP/2 always takes
  ``:authority`` over a ``host`` field and never emits two. More than one Host line → 400
  (ALB forwards all copies under preserve; we refuse the ambiguity, RFC 9112 §3.2) **[?]**.
  HTTP/1.1 without any Host → 400 (RFC 9112); HTTP/1.0 without Host → ``target_authority`` **[?]**.
  Absolute-form targets become origin-form; userinfo in the URL → 400 **[?]**.
* ``X-Forwarded-For`` (§5.1). All lines are joined with ", ". More than 30 comma-separated
  entries *received* → 463, in every mode **[?]** (ALB: "received ... more than 30"; 30 received
  plus the appended client gives 31 forwarded, which passes). ``append``: received + ", " +
  client, or client alone; with ``xff_client_port`` the entry is ``ip:port`` / ``[v6]:port``.
  ``preserve``: forwarded unchanged; absent stays absent ([doc] per the reference §5.1 — the
  brief suggested adding the client ip when absent; the reference's [doc] reading wins).
  ``remove``: deleted. ``preserve``/``remove`` ignore ``xff_client_port``.
* ``X-Forwarded-Proto``/``X-Forwarded-Port``: the listener's scheme and port, replacing any
  client-supplied value **[?]** (the reference's recommendation: never trust the client).
* ``X-Amzn-Trace-Id`` (§5.2): absent → ``Root=1-<8 hex epoch>-<24 hex>``; present and
  well-formed (``;``-separated ``key=value`` fields with a valid ``Root``) → ``Self=`` inserted
  in front, or an existing ``Self`` value replaced in place, other fields kept; malformed (no or
  bad Root, empty field, several header lines) → replaced by a fresh ``Root`` **[?]**; request
  header block over 7 KiB → fresh ``Root`` only (§5.2 limit).
* HTTP/2 ``cookie`` fields (split by the client) are joined with "; " into one line; HTTP/1
  Cookie lines pass as received.
* ``routing.http.drop_invalid_header_fields.enabled``: names outside ``[A-Za-z0-9-]`` (e.g.
  ``X_Foo``, ``x.y``) are dropped instead of forwarded.
* Framing: ``Content-Length: <n>`` for "length" (also ``0``), ``Transfer-Encoding: chunked`` for
  "chunked", nothing for "none" except ``Content-Length: 0`` on POST/PUT/PATCH. HTTP/2
  requests: content-length when given; otherwise no body when END_STREAM came with the headers
  or the method is GET/HEAD (DATA on such a stream must then be refused by the caller) **[?]**,
  else chunked.

Speed: the header list is walked once; each name is classified by one dict lookup in a bounded
cache (lowercasing and the token check run once per distinct name); the CR/LF/NUL check is three
C-level scans of the finished head; per-connection bytes live on :class:`ClientSide`.
"""

from __future__ import annotations

import binascii
import os
import re
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from albatross.http.messages import F_CONTENT_LENGTH, F_HOST, F_TRACE, F_XFF

if TYPE_CHECKING:
    from albatross.http.messages import Request

__all__ = [
    "BodyFraming",
    "ClientSide",
    "ForwardingPolicy",
    "RequestRejected",
    "TraceIds",
    "build_target_request",
    "build_target_request_fast",
    "build_target_request_for",
    "check_request_framing",
    "target_request",
    "trace_header_value",
]

MAX_XFF_ENTRIES = 30
TRACE_REWRITE_THRESHOLD = 7 * 1024


class RequestRejected(Exception):
    """The request must not reach a target; answer ``status`` (400, 405, 463, 501) and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    """The load balancer attributes that shape a forwarded request (ALB §4.1)."""

    xff_mode: str = "append"
    """``routing.http.xff_header_processing.mode``: append | preserve | remove."""
    xff_client_port: bool = False
    """``routing.http.xff_client_port.enabled``: append ``:port`` to the client entry."""
    preserve_host: bool = False
    """``routing.http.preserve_host_header.enabled``."""
    drop_invalid_header_fields: bool = False
    """``routing.http.drop_invalid_header_fields.enabled``: drop names outside [A-Za-z0-9-]."""
    desync_mitigation_mode: str = "defensive"
    """Accepted for the access log; Albatross always rejects ambiguous framing (strictest)."""
    tls_headers: bool = False
    """``routing.http.x_amzn_tls_version_and_cipher_suite.enabled``: tell the target the client's
    TLS version and cipher in ``x-amzn-tls-version`` and ``x-amzn-tls-cipher-suite``."""

    def __post_init__(self) -> None:
        if self.xff_mode not in ("append", "preserve", "remove"):
            raise ValueError(f"xff_header_processing.mode must be append|preserve|remove, not {self.xff_mode!r}")
        if self.desync_mitigation_mode not in ("monitor", "defensive", "strictest"):
            raise ValueError(f"desync_mitigation_mode must be monitor|defensive|strictest, not {self.desync_mitigation_mode!r}")


@dataclass(frozen=True, slots=True)
class ClientSide:
    """One client connection as the target should learn about it; build once per connection."""

    ip: str
    """Client address as text (IPv6 without brackets)."""
    port: int
    """Client source port."""
    listener_port: int
    """The listener port the client connected to."""
    scheme: str
    """``http`` or ``https``: the client↔load balancer protocol."""
    tls_version: str | None = None
    """The client connection's TLS version (``TLSv1.3``) and cipher (OpenSSL's name), if TLS."""
    tls_cipher: str | None = None
    tls_lines: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    """Precomputed ``x-amzn-tls-version`` and ``x-amzn-tls-cipher-suite`` lines (empty without TLS)."""
    xff_entry: bytes = field(init=False, repr=False, compare=False)
    """Precomputed X-Forwarded-For entry without the port."""
    xff_entry_port: bytes = field(init=False, repr=False, compare=False)
    """Precomputed X-Forwarded-For entry with ``:port`` (IPv6 in brackets)."""
    forwarded_lines: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)
    """Precomputed ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` lines."""

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {self.scheme!r}")
        ip = self.ip.encode("ascii")
        with_port = (b"[%s]:%d" if b":" in ip else b"%s:%d") % (ip, self.port)
        object.__setattr__(self, "xff_entry", ip)
        object.__setattr__(self, "xff_entry_port", with_port)
        object.__setattr__(self, "forwarded_lines", (
            b"X-Forwarded-Proto: %s\r\n" % self.scheme.encode(),
            b"X-Forwarded-Port: %d\r\n" % self.listener_port,
        ))
        tls: tuple[bytes, ...] = ()
        if self.tls_version and self.tls_cipher:
            tls = (b"x-amzn-tls-version: %s\r\n" % self.tls_version.encode("ascii"),
                   b"x-amzn-tls-cipher-suite: %s\r\n" % self.tls_cipher.encode("ascii"))
        object.__setattr__(self, "tls_lines", tls)


@dataclass(frozen=True, slots=True)
class BodyFraming:
    """How the request body is delimited, as decided by :func:`check_request_framing`."""

    kind: str
    """``none`` | ``length`` | ``chunked``."""
    length: int | None = None
    """The body length for ``length``; None otherwise."""
    upgrade: bool = False
    """True for a WebSocket handshake (forwarded with ``Upgrade: websocket``)."""


NO_BODY = BodyFraming("none")
CHUNKED = BodyFraming("chunked")
_ZERO = BodyFraming("length", 0)

# -- header name classification ---------------------------------------------------------------

_PLAIN, _CL, _TE, _CONN, _UPGRADE, _BAD, _HOST, _HOP, _XFF, _XF_OURS, _TRACE, _COOKIE = range(12)
_PLAIN_INVALID = 32  # a token, but outside ALB's [A-Za-z0-9-]
_KINDS = {
    b"content-length": _CL, b"transfer-encoding": _TE, b"connection": _CONN, b"upgrade": _UPGRADE,
    b"host": _HOST, b"keep-alive": _HOP, b"proxy-connection": _HOP, b"te": _HOP,
    b"http2-settings": _HOP, b"x-forwarded-for": _XFF, b"x-forwarded-proto": _XF_OURS,
    b"x-forwarded-port": _XF_OURS, b"x-amzn-trace-id": _TRACE, b"cookie": _COOKIE,
    # Ours alone to set (routing.http.x_amzn_tls_version_and_cipher_suite.enabled): a client's are dropped.
    b"x-amzn-tls-version": _XF_OURS, b"x-amzn-tls-cipher-suite": _XF_OURS,
}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ALB_NAME = re.compile(rb"[-A-Za-z0-9]+")
_CODINGS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9a-z]+)*")
_NAME_CACHE: dict[bytes, int] = {}
_NAME_CACHE_LIMIT = 4096


def _classify(name: bytes) -> int:
    """The kind of a header name; cached (bounded), so this runs once per distinct name."""
    lower = name.lower()
    if _TOKEN.fullmatch(name) is None:
        kind = _BAD
    elif _ALB_NAME.fullmatch(name) is not None:
        kind = _KINDS.get(lower, _PLAIN)
    elif lower.replace(b"_", b"-").replace(b".", b"-") in (b"content-length", b"transfer-encoding"):
        kind = _BAD
    else:
        kind = _PLAIN_INVALID
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
        _NAME_CACHE[name] = kind
    return kind


# -- framing ----------------------------------------------------------------------------------

_NO_BODY_METHODS = frozenset((b"GET", b"HEAD"))
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))
_REFUSED_METHODS = {b"TRACE": "method TRACE is not allowed", b"CONNECT": "method CONNECT is not allowed"}


def check_request_framing(method: bytes, headers: list[tuple[bytes, bytes]], http_version: str, *,
                          end_stream: bool = False) -> BodyFraming:
    """Decide how the request body is delimited, or raise :class:`RequestRejected`.

    ``headers`` are the request's fields (names in any case; HTTP/2 pseudo-headers removed).
    ``http_version`` is ``"1.0"``, ``"1.1"`` or ``"2"``; ``end_stream`` matters for HTTP/2 only
    (END_STREAM arrived with the HEADERS frame). See the module docstring for every rule:
    any ambiguous framing is rejected (ALB ``strictest``), an unsupported coding gets 501.
    """
    if method in _REFUSED_METHODS:
        raise RequestRejected(405, _REFUSED_METHODS[method])
    cl = te = upgrade = connection = None
    n_cl = n_te = 0
    get = _NAME_CACHE.get
    for name, value in headers:
        kind = get(name)
        if kind is None:
            kind = _classify(name)
        if 0 < kind < 6:
            if kind == _CL:
                cl, n_cl = value, n_cl + 1
            elif kind == _TE:
                te, n_te = value, n_te + 1
            elif kind == _CONN:
                connection = value if connection is None else connection + b"," + value
            elif kind == _UPGRADE:
                upgrade = value
            else:
                raise RequestRejected(400, f"invalid header name {name[:64]!r}")
    if http_version == "2":
        return _h2_framing(method, cl, n_cl, te, end_stream)
    if te is not None:
        framing = _te_framing(method, te, n_te, cl, http_version)
    elif cl is not None:
        framing = _cl_framing(method, cl, n_cl)
    else:
        framing = NO_BODY
    if upgrade is not None and connection is not None and _is_websocket(method, upgrade, connection, http_version):
        return BodyFraming(framing.kind, framing.length, True)
    return framing


def _te_framing(method: bytes, te: bytes, n_te: int, cl: bytes | None, http_version: str) -> BodyFraming:
    if cl is not None:
        raise RequestRejected(400, "both Content-Length and Transfer-Encoding")
    if n_te > 1:
        raise RequestRejected(400, "more than one Transfer-Encoding")
    if http_version == "1.0":
        raise RequestRejected(400, "Transfer-Encoding in an HTTP/1.0 request")
    coding = te.strip(b" \t").lower()
    if coding == b"identity":
        return NO_BODY
    if coding != b"chunked":
        if _CODINGS.fullmatch(coding) is not None and b"chunked" not in coding and b"identity" not in coding:
            raise RequestRejected(501, f"unsupported Transfer-Encoding {te[:64]!r}")
        raise RequestRejected(400, f"invalid Transfer-Encoding {te[:64]!r}")
    if method in _NO_BODY_METHODS:
        raise RequestRejected(400, f"Transfer-Encoding on a {method.decode()} request")
    return CHUNKED


def _cl_framing(method: bytes, cl: bytes, n_cl: int) -> BodyFraming:
    if n_cl > 1:
        raise RequestRejected(400, "more than one Content-Length")
    length = _parse_length(cl)
    if length == 0:
        return _ZERO
    if method in _NO_BODY_METHODS:
        raise RequestRejected(400, f"body on a {method.decode()} request")
    return BodyFraming("length", length)


def _parse_length(value: bytes) -> int:
    digits = value.strip(b" \t")
    if not digits.isdigit() or len(digits) > 18:  # bytes.isdigit is ASCII-only: no sign, no spaces
        raise RequestRejected(400, f"invalid Content-Length {value[:32]!r}")
    return int(digits)


def _h2_framing(method: bytes, cl: bytes | None, n_cl: int, te: bytes | None, end_stream: bool) -> BodyFraming:
    if te is not None:
        raise RequestRejected(400, "Transfer-Encoding in an HTTP/2 request")
    if cl is not None:
        return _cl_framing(method, cl, n_cl)
    if end_stream or method in _NO_BODY_METHODS:
        return NO_BODY
    return CHUNKED


def _is_websocket(method: bytes, upgrade: bytes, connection: bytes, http_version: str) -> bool:
    if method != b"GET" or http_version != "1.1" or upgrade.strip(b" \t").lower() != b"websocket":
        return False
    return b"upgrade" in _connection_tokens(connection)


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    tokens = _CONN_CACHE.get(value)
    if tokens is None:
        tokens = frozenset(t.strip(b" \t").lower() for t in value.split(b",")) - {b""}
        if len(_CONN_CACHE) < 256:
            _CONN_CACHE[value] = tokens
    return tokens


_CONN_CACHE: dict[bytes, frozenset[bytes]] = {}
_CONN_BUILTIN = frozenset((b"close", b"keep-alive", b"upgrade"))

# -- trace ids --------------------------------------------------------------------------------

_TRACE_ID = re.compile(rb"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}")
_TRACE_KEY = re.compile(rb"[A-Za-z0-9_.-]+")
_LIVE_GENERATORS: weakref.WeakSet[TraceIds] = weakref.WeakSet()


class TraceIds:
    """Fresh ``1-<8 hex epoch seconds>-<24 hex random>`` ids: a slice and one concatenation each.

    Random hex is drawn from ``os.urandom`` 256 ids at a time and the time prefix is formatted
    once a second. A forked child discards the pool it inherited (no duplicate ids across
    pre-forked workers).
    """

    __slots__ = ("_pool", "_pos", "_second", "_prefix", "__weakref__")
    _BATCH = 256

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0
        self._second = -1
        self._prefix = b""
        _LIVE_GENERATORS.add(self)

    def __call__(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = b"1-%08x-" % (second & 0xFFFFFFFF)
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = binascii.hexlify(os.urandom(12 * self._BATCH))
            pos = 0
        self._pos = pos + 24
        return self._prefix + self._pool[pos:pos + 24]

    def _discard(self) -> None:
        self._pool = b""
        self._pos = 0


def _after_fork() -> None:
    for generator in list(_LIVE_GENERATORS):
        generator._discard()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

_TRACE_IDS = TraceIds()


def trace_header_value(received: bytes | None, fresh_id: bytes) -> bytes:
    """The ``X-Amzn-Trace-Id`` value to forward, given the received value and a fresh id.

    Absent or malformed → ``Root=<fresh>``; well-formed → ``Self=<fresh>`` inserted first, or an
    existing Self replaced in place; other fields kept in order (ALB §5.2).
    """
    if not received:
        return b"Root=" + fresh_id
    fields = received.split(b";")
    has_root = False
    self_at = -1
    for i, item in enumerate(fields):
        key, eq, value = item.strip(b" \t").partition(b"=")
        if not eq or _TRACE_KEY.fullmatch(key) is None or not value:
            return b"Root=" + fresh_id
        if key == b"Root":
            if has_root or _TRACE_ID.fullmatch(value) is None:
                return b"Root=" + fresh_id
            has_root = True
        elif key == b"Self":
            self_at = i
        fields[i] = key + b"=" + value
    if not has_root:
        return b"Root=" + fresh_id
    if self_at >= 0:
        fields[self_at] = b"Self=" + fresh_id
        return b";".join(fields)
    return b"Self=" + fresh_id + b";" + b";".join(fields)


# -- the target request -----------------------------------------------------------------------

_HOST_CACHE: dict[tuple[bytes, int], bytes] = {}


def _default_host(host: bytes, listener_port: int) -> bytes:
    """ALB's Host rewrite with preserve_host off: strip the port on 80/443, else add ours."""
    key = (host, listener_port)
    result = _HOST_CACHE.get(key)
    if result is None:
        if host.startswith(b"["):
            name, _, rest = host.partition(b"]")
            name += b"]"
            port = rest[1:] if rest.startswith(b":") else b""
        else:
            name, colon, port = host.rpartition(b":")
            if not colon:
                name, port = host, b""
        if listener_port in (80, 443):
            result = name
        elif port:
            result = host
        else:
            result = b"%s:%d" % (name, listener_port)
        if len(_HOST_CACHE) < 1024:
            _HOST_CACHE[key] = result
    return result


def _origin_form(target: bytes) -> tuple[bytes, bytes | None]:
    """(origin-form target, URL host or None) for a request target as received."""
    if target[:1] == b"/" or target == b"*":
        return target, None
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise RequestRejected(400, "invalid request target")
    cut = len(rest)
    for delimiter in (b"/", b"?", b"#"):
        at = rest.find(delimiter)
        if 0 <= at < cut:
            cut = at
    authority, path = rest[:cut], rest[cut:]
    if not authority or b"@" in authority:
        raise RequestRejected(400, "invalid authority in absolute-form target")
    path = path.partition(b"#")[0]
    if not path.startswith(b"/"):
        path = b"/" + path
    return path, authority


def _header_lines(headers: list[tuple[bytes, bytes]], drop_invalid: bool, extra_drop: frozenset[bytes],
                  out: list[bytes], h2: bool) -> tuple[bytes | None, int, bytes | None, bytes | None, frozenset[bytes]]:
    """One pass: forwardable fields go into ``out`` as 4 pieces each (name, ": ", value, CRLF).

    Returns (first Host, number of Host lines, joined X-Forwarded-For, trace value — b"" when
    repeated —, end-to-end names the Connection field lists). ``h2``: the request came over
    HTTP/2, whose split ``cookie`` fields are joined into one line (RFC 9113 §8.2.3).
    """
    host = xff = trace = connection = cookie = None
    hosts = 0
    get = _NAME_CACHE.get
    for name, value in headers:
        kind = get(name)
        if kind is None:
            kind = _classify(name)
        if not kind or (kind == 32 and not drop_invalid):  # _PLAIN, _PLAIN_INVALID
            if extra_drop and name.lower() in extra_drop:
                continue
            out += (name, b": ", value, b"\r\n")
        elif kind == 6:  # _HOST
            if host is None:
                host = value
            hosts += 1
        elif kind == 8:  # _XFF
            xff = value if xff is None else xff + b", " + value
        elif kind == 10:  # _TRACE
            trace = value if trace is None else b""
        elif kind == 3:  # _CONN
            connection = value if connection is None else connection + b"," + value
        elif kind == 11:  # _COOKIE
            if not h2:
                out += (name, b": ", value, b"\r\n")
            else:
                cookie = value if cookie is None else cookie + b"; " + value
        elif kind == 5:  # _BAD
            raise RequestRejected(400, f"invalid header name {name[:64]!r}")
    if cookie is not None:
        out += (b"cookie", b": ", cookie, b"\r\n")
    extra = _extra_connection_tokens(connection) if connection is not None else _EMPTY
    return host, hosts, xff, trace, extra


_EMPTY: frozenset[bytes] = frozenset()
_EXTRA_CACHE: dict[bytes, frozenset[bytes]] = {}


def _extra_connection_tokens(value: bytes) -> frozenset[bytes]:
    """Field names a Connection value lists beyond close/keep-alive/upgrade (cached)."""
    tokens = _EXTRA_CACHE.get(value)
    if tokens is None:
        tokens = _connection_tokens(value) - _CONN_BUILTIN
        if len(_EXTRA_CACHE) < 256:
            _EXTRA_CACHE[value] = tokens
    return tokens


def _choose_host(url_host: bytes | None, host: bytes | None, hosts: int, authority: bytes | None,
                 http_version: str, client: ClientSide, policy: ForwardingPolicy, target_authority: bytes) -> bytes:
    if authority is not None:
        host = authority
    elif hosts > 1:
        raise RequestRejected(400, "more than one Host header")
    elif url_host is not None and (host is None or not policy.preserve_host):
        host = url_host
    if host is None:
        if http_version == "1.1":
            raise RequestRejected(400, "HTTP/1.1 request without Host")
        return target_authority
    if policy.preserve_host:
        return host
    return _default_host(host, client.listener_port)


def build_target_request(method: bytes, target: bytes, http_version: str, headers: list[tuple[bytes, bytes]],
                         framing: BodyFraming, client: ClientSide, policy: ForwardingPolicy, *,
                         authority: bytes | None = None, target_authority: bytes = b"",
                         trace_id: bytes | None = None, now: float) -> bytes:
    """The HTTP/1.1 request head (request line, fields, blank line) to send to the target.

    ``headers`` are the client's fields as received (HTTP/2: pseudo-headers removed, pass
    ``:authority`` as ``authority``); ``framing`` comes from :func:`check_request_framing`;
    ``target_authority`` (``ip:port``) is the Host for an HTTP/1.0 request without one;
    ``trace_id`` is a fresh ``1-xxxxxxxx-<24 hex>`` id (from a :class:`TraceIds`, so the
    caller can log it; None draws one here for ``now``). Raises :class:`RequestRejected`.
    """
    if target[:1] == b"/":
        origin, url_host = target, None
    else:
        origin, url_host = _origin_form(target)
    drop_invalid = policy.drop_invalid_header_fields
    out = [b"", b""]  # request line and Host, filled in below
    h2 = http_version == "2"
    host, hosts, xff, trace, extra = _header_lines(headers, drop_invalid, _EMPTY, out, h2)
    if extra:  # Connection named end-to-end fields: rare, so a second pass is cheaper than bookkeeping
        out = [b"", b""]
        _header_lines(headers, drop_invalid, extra, out, h2)
    pieces = len(out) - 2
    out[0] = method + b" " + origin + b" HTTP/1.1\r\n"
    out[1] = b"Host: " + _choose_host(url_host, host, hosts, authority, http_version, client, policy,
                                      target_authority) + b"\r\n"
    if xff is not None and xff.count(b",") >= MAX_XFF_ENTRIES:
        raise RequestRejected(463, f"X-Forwarded-For has more than {MAX_XFF_ENTRIES} addresses")
    _add_proxy_fields(out, method, framing, xff, trace, client, policy, trace_id, now)
    lines = len(out) - pieces + pieces // 4 + 1  # whole lines, 4 pieces per field, the last piece ends 2 lines
    head = b"".join(out)
    if head.count(b"\n") != lines or head.count(b"\r") != lines or head.find(b"\x00") >= 0 or b" " in origin:
        raise RequestRejected(400, "CR, LF or NUL in a header value, or SP/CR/LF/NUL in the request target")
    return head


def build_target_request_for(request: Request, framing: BodyFraming, client: ClientSide, policy: ForwardingPolicy,
                             *, target_authority: bytes = b"", trace_id: bytes | None = None, now: float) -> bytes:
    """:func:`build_target_request` for a front end's :class:`~albatross.http.messages.Request`.

    ``Request.authority`` is the Host value for HTTP/1 but ``:authority`` for HTTP/2; only the
    latter is passed on as ``authority`` (HTTP/1 Host lines are read from the headers, so that
    several Host lines and absolute-form targets are judged correctly).
    """
    version = request.http_version
    return build_target_request(request.method, request.target, version, request.headers, framing, client, policy,
                                authority=request.authority if version == "2" else None,
                                target_authority=target_authority, trace_id=trace_id, now=now)


def build_target_request_fast(request: Request, client: ClientSide, policy: ForwardingPolicy, *,
                              trace_id: bytes | None = None, now: float) -> tuple[BodyFraming, bytes] | None:
    """The fast path's :func:`check_request_framing` + :func:`build_target_request`, or ``None``.

    For an HTTP/1.1 request read by the fast path (``request.raw``: a canonical field block
    without Transfer-Encoding, Upgrade, Expect or repeated special fields), the head is the
    request line, Host, the block's kept lines spliced as received, then the same
    X-Forwarded-*, framing and trace lines the general path writes, in the same order. Every
    case this does not reproduce exactly (absolute-form target, TRACE/CONNECT, no Host, an
    invalid or GET/HEAD Content-Length, X-Forwarded-For over the limit) returns ``None`` and the
    caller takes the general path, which answers it as before. The block's bytes were checked
    for CR, LF and NUL by the scan and the request line by llhttp, so no final check is needed.
    """
    raw = request.raw
    target = request.target
    method = request.method
    if raw is None or target[:1] != b"/" or method in _REFUSED_METHODS:
        return None
    host = raw.get(F_HOST)
    if host is None:
        return None
    cl = raw.get(F_CONTENT_LENGTH)
    if cl is None:
        framing = NO_BODY
    else:
        if not cl.isdigit() or len(cl) > 18:
            return None
        length = int(cl)
        if length == 0:
            framing = _ZERO
        elif method in _NO_BODY_METHODS:
            return None
        else:
            framing = BodyFraming("length", length)
    xff = raw.get(F_XFF)
    if xff is not None and xff.count(b",") >= MAX_XFF_ENTRIES:
        return None
    out = [method + b" " + target + b" HTTP/1.1\r\n",
           b"Host: " + (host if policy.preserve_host else _default_host(host, client.listener_port)) + b"\r\n",
           raw.kept]
    _add_proxy_fields(out, method, framing, xff, raw.get(F_TRACE), client, policy, trace_id, now)
    return framing, b"".join(out)


def target_request(request: Request, client: ClientSide, policy: ForwardingPolicy, *,
                   trace_id: bytes | None = None, now: float) -> tuple[BodyFraming, bytes]:
    """How the request's body is framed and the head the target gets: the fast path's splice
    when it applies, else :func:`check_request_framing` + :func:`build_target_request`."""
    if request.raw is not None:
        fast = build_target_request_fast(request, client, policy, trace_id=trace_id, now=now)
        if fast is not None:
            return fast
    framing = check_request_framing(request.method, request.headers, request.http_version,
                                    end_stream=request.end_stream)
    return framing, build_target_request_for(request, framing, client, policy, trace_id=trace_id, now=now)


def _add_proxy_fields(out: list[bytes], method: bytes, framing: BodyFraming, xff: bytes | None, trace: bytes | None,
                      client: ClientSide, policy: ForwardingPolicy, trace_id: bytes | None, now: float) -> None:
    """The fields after the client's: X-Forwarded-For/-Proto/-Port, the TLS fields, framing and
    X-Amzn-Trace-Id with the blank line (both paths end every head with these, in this order).
    ``trace`` is the received X-Amzn-Trace-Id (b"" when repeated); a head over 7 KiB by then
    gets a fresh Root instead."""
    mode = policy.xff_mode
    if mode == "append":
        entry = client.xff_entry_port if policy.xff_client_port else client.xff_entry
        out.append(b"X-Forwarded-For: " + (xff + b", " + entry if xff else entry) + b"\r\n")
    elif mode == "preserve" and xff is not None:
        out.append(b"X-Forwarded-For: " + xff + b"\r\n")
    out += client.forwarded_lines
    if policy.tls_headers:
        out += client.tls_lines
    _add_framing(out, method, framing)
    if trace is not None and sum(map(len, out)) > TRACE_REWRITE_THRESHOLD:
        trace = None
    fresh = trace_id if trace_id is not None else _TRACE_IDS(now)
    out.append(b"X-Amzn-Trace-Id: " + (trace_header_value(trace, fresh) if trace else b"Root=" + fresh) + b"\r\n\r\n")


def _add_framing(out: list[bytes], method: bytes, framing: BodyFraming) -> None:
    kind = framing.kind
    if kind == "length":
        out.append(b"Content-Length: %d\r\n" % framing.length)
    elif kind == "chunked":
        out.append(b"Transfer-Encoding: chunked\r\n")
    elif method in _BODY_METHODS:
        out.append(b"Content-Length: 0\r\n")
    if framing.upgrade:
        out.append(b"Upgrade: websocket\r\n")
        out.append(b"Connection: upgrade\r\n")

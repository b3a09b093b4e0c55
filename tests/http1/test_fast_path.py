"""The HTTP/1.1 fast path against the general path, which is its reference.

The same client bytes go to two server connections, one with the fast path (the default) and
one without (``fast=False``: every request through llhttp's per-field callbacks). An app in
front of each records what the proxy would make of each request — the target head (with a
fixed trace id), the body framing or the rejection status, the access-log line (fixed clock)
and the fields a rule would see — and answers a small page. Both connections must produce the
same records and the same bytes to the client, for any input, split at any point.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from albatross.http.exchange import Handler, Responder
from albatross.http.forwarding import ClientSide, ForwardingPolicy, RequestRejected, target_request
from albatross.http.messages import F_DATE, ConnectionInfo, Request
from albatross.http1.connection import H1ServerConnection
from albatross.http1.scan import scan_request, split_fields
from albatross.observe.record import RequestRecord, access_log_line, request_head_size
from tests.helpers import FakeOwner

TRACE = b"1-5f0c0000-000000000000000000000000"
CLOCK = 1_700_000_000.0
CLIENT = ClientSide("192.0.2.7", 40123, 8443, "https", "TLSv1.3", "TLS_AES_128_GCM_SHA256")
POLICIES = [ForwardingPolicy(), ForwardingPolicy(xff_mode="preserve", preserve_host=True, tls_headers=True),
            ForwardingPolicy(xff_client_port=True, drop_invalid_header_fields=True)]


class _Listener:
    port = 8443

    def finished(self, record: RequestRecord) -> None:
        pass

    def certificate_arn(self, path: str) -> str:
        return "-"


class _Recorder(Handler):
    """Answers every request with a fixed page once its body is complete."""

    def __init__(self, responder: Responder, log: list[object]) -> None:
        self.responder = responder
        self.log = log

    def body(self, data: bytes) -> None:
        self.log.append(("body", data))

    def end(self, trailers: object = None) -> None:
        self.log.append(("end",))
        r = self.responder
        r.send_head(200, [(b"Date", b"fixed"), (b"Content-Type", b"text/plain")], content_length=2)
        r.send_body(b"ok")
        r.end()


def _record(request: Request, policy: ForwardingPolicy) -> tuple[object, ...]:
    try:
        framing, head = target_request(request, CLIENT, policy, trace_id=TRACE, now=CLOCK)
        outcome: object = (framing, head)
    except RequestRejected as exc:
        outcome = exc.status
    conn = ConnectionInfo("192.0.2.7:40123", None, "192.0.2.7", 40123, 8443)
    request.connection = conn
    rec = RequestRecord(_Listener(), request)
    rec.received = request_head_size(request)
    rec.created = CLOCK
    rec.trace_id = b"Root=" + TRACE  # as the forward handler sets it (a fresh one is random)
    line = access_log_line(rec, "app/lb/0000", "TID_0", CLOCK)
    return (request.method, request.target, request.http_version, request.authority, list(request.headers),
            outcome, line)


def _run(data: bytes, cuts: list[int], fast: bool, policy: ForwardingPolicy) -> tuple[list[object], bytes, bool]:
    log: list[object] = []

    def app(request: Request, responder: Responder) -> Handler:
        log.append(_record(request, policy))
        return _Recorder(responder, log)

    owner = FakeOwner(drop_after_close=True)  # as the listener's protocols
    conn = H1ServerConnection(app, owner, scheme=b"https", fast=fast)
    at = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        if cut > at:
            conn.receive_data(data[at:cut])
            at = cut
    out = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", b"".join(owner.sent))
    return log, out, owner.closed


def _assert_same(data: bytes, cuts: list[int] = (), policy: ForwardingPolicy = POLICIES[0]) -> None:
    general = _run(data, list(cuts), False, policy)
    fast = _run(data, list(cuts), True, policy)
    assert fast == general


# -- inputs ------------------------------------------------------------------------------------

NAMES = [b"Host", b"host", b"HOST", b"Content-Length", b"content-length", b"Transfer-Encoding", b"Connection",
         b"X-Forwarded-For", b"x-forwarded-proto", b"X-Forwarded-Port", b"X-Amzn-Trace-Id", b"Cookie", b"User-Agent",
         b"Accept", b"Keep-Alive", b"TE", b"Upgrade", b"Expect", b"X_Foo", b"x.y", b"Proxy-Connection",
         b"x-amzn-tls-version", b"Accept-Language", b"Referer", b"Trailer", b"HTTP2-Settings"]
VALUES = [b"example.com", b"example.com:8443", b"0", b"5", b"12", b"-1", b" 5", b"chunked", b"gzip", b"keep-alive",
          b"close", b"Close", b"upgrade", b"x-custom", b"websocket", b"100-continue", b"a=1; b=2", b"10.0.0.1",
          b"10.0.0.1, 10.0.0.2", b"Root=1-5f0c0000-0123456789abcdef01234567", b"Root=bad", b"Self=1;Root=x",
          b"text/html,*/*;q=0.8", b"", b"  padded  ", b"tab\there", b"caf\xc3\xa9", b"trailing ", b"a: b", b"\x01"]
SEPARATORS = [b": ", b": ", b": ", b":", b":  ", b":\t", b" : "]
METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT"]
TARGETS = [b"/", b"/a/b?x=1&y=2", b"/%7Euser", b"http://example.com/p", b"*", b"/p#frag", b"example.com:443"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]

field = st.tuples(st.sampled_from(NAMES), st.sampled_from(SEPARATORS), st.sampled_from(VALUES)).map(
    lambda t: t[0] + t[1] + t[2] + b"\r\n")
CLEAN = [(b"Accept", b"*/*"), (b"User-Agent", b"curl/8"), (b"Cookie", b"AWSALB=x; s=1"),
         (b"X-Forwarded-For", b"203.0.113.9"), (b"X-Amzn-Trace-Id", b"Root=1-5f0c0000-0123456789abcdef01234567"),
         (b"Accept-Language", b"en"), (b"Connection", b"keep-alive"), (b"Connection", b"close"),
         (b"Referer", b"https://example.com/"), (b"X-Empty", b""), (b"X-Forwarded-Proto", b"http")]
clean_field = st.sampled_from(CLEAN).map(lambda t: t[0] + b": " + t[1] + b"\r\n")
odd_line = st.sampled_from([b" folded\r\n", b"\tfolded\r\n", b"Bare: lf\n", b"NoColon\r\n", b"X: a\rb\r\n"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from(METHODS[:3] * 3 + METHODS))
        line = method + b" " + draw(st.sampled_from(TARGETS[:2] * 3 + TARGETS)) + b" " + draw(st.sampled_from(VERSIONS)) + b"\r\n"
        fields = draw(st.lists(st.one_of(clean_field, clean_field, field, odd_line), max_size=8))
        if draw(st.integers(0, 3)):
            fields.insert(0, b"Host: example.com\r\n")
        body = draw(st.sampled_from([b"", b"", b"hello", b"0\r\n\r\n"]))
        if body and draw(st.booleans()):
            fields.append(b"Content-Length: %d\r\n" % len(body))
        out.append(line + b"".join(fields) + b"\r\n" + body)
    return b"".join(out)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.lists(st.integers(0, 400), max_size=4), st.sampled_from(POLICIES))
@example(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", [], POLICIES[0])
@example(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", [30],
         POLICIES[0])
@example(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n", [40, 43],
         POLICIES[1])
@example(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [], POLICIES[0])
def test_fast_path_matches_general_path(data: bytes, cuts: list[int], policy: ForwardingPolicy) -> None:
    _assert_same(data, cuts, policy)


def test_fast_path_is_taken_for_a_browser_request() -> None:
    """The property above would hold trivially if nothing took the fast path: this one does."""
    seen: list[Request] = []

    def app(request: Request, responder: Responder) -> Handler:
        seen.append(request)
        return _Recorder(responder, [])

    conn = H1ServerConnection(app, FakeOwner(drop_after_close=True))
    conn.receive_data(b"GET /x HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0\r\n"
                      b"Accept: */*\r\nConnection: keep-alive\r\nCookie: a=1\r\n\r\n")
    assert len(seen) == 1 and seen[0].raw is not None
    framing, head = target_request(seen[0], CLIENT, ForwardingPolicy(), trace_id=TRACE, now=CLOCK)
    assert head == (b"GET /x HTTP/1.1\r\nHost: shop.example.com:8443\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n"
                    b"Cookie: a=1\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n"
                    b"X-Forwarded-Port: 8443\r\nX-Amzn-Trace-Id: Root=" + TRACE + b"\r\n\r\n")
    assert framing.kind == "none"


def test_unusual_requests_take_the_general_path() -> None:
    for block in (b"Host: a\r\nTransfer-Encoding: chunked\r\n", b"Host: a\r\nUpgrade: websocket\r\n",
                  b"Host: a\r\nExpect: 100-continue\r\n", b"Host: a\r\nHost: b\r\n", b"Host: a\r\n folded\r\n",
                  b"Host:a\r\n", b"Host:  a\r\n", b"X_Foo: 1\r\n", b"Connection: x-secret\r\n", b"A: \x01\r\n",
                  b"Cookie: a\r\nCookie: b\r\n", b"Host: a\n"):
        assert scan_request(block) is None, block


def test_split_fields_is_what_llhttp_reports() -> None:
    block = b"Host: a\r\nEmpty: \r\nSpaced: x y  \r\nColon: a: b\r\n"
    scan = scan_request(block)
    assert scan is not None and scan.fields == 4
    assert split_fields(block) == [(b"Host", b"a"), (b"Empty", b""), (b"Spaced", b"x y  "), (b"Colon", b"a: b")]
    assert scan.kept == b"Empty: \r\nSpaced: x y  \r\nColon: a: b\r\n"


def test_byte_at_a_time() -> None:
    data = (b"GET /a HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /c HTTP/1.0\r\nHost: a\r\n\r\n")
    _assert_same(data, list(range(len(data))))


# -- responses ---------------------------------------------------------------------------------

RESPONSE_NAMES = [b"Content-Length", b"content-length", b"Connection", b"Keep-Alive", b"Transfer-Encoding", b"Date",
                  b"Set-Cookie", b"Server", b"Content-Type", b"ETag", b"Trailer", b"Upgrade", b"TE", b"X_Odd",
                  b"Proxy-Connection", b"Cache-Control"]
RESPONSE_VALUES = [b"0", b"5", b"keep-alive", b"close", b"x-secret", b"chunked", b"gzip", b"a=1; Path=/",
                   b"nginx", b"text/plain", b'"abc"', b"", b"  padded", b"Tue, 14 Nov 2023 22:13:20 GMT", b"\x01"]
STATUSES = [b"200 OK", b"200 OK", b"404 Not Found", b"204 No Content", b"304 Not Modified", b"100 Continue",
            b"101 Switching Protocols", b"500 ", b"200", b"999 Odd"]


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from(STATUSES))
    line = draw(st.sampled_from([b"HTTP/1.1 ", b"HTTP/1.1 ", b"HTTP/1.0 "])) + status + b"\r\n"
    clean = st.sampled_from([b"Server: nginx\r\n", b"Content-Type: text/plain\r\n", b"Set-Cookie: s=1\r\n",
                             b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n", b"Connection: keep-alive\r\n",
                             b"ETag: \"x\"\r\n"])
    odd = st.tuples(st.sampled_from(RESPONSE_NAMES), st.sampled_from(SEPARATORS),
                    st.sampled_from(RESPONSE_VALUES)).map(lambda t: t[0] + t[1] + t[2] + b"\r\n")
    fields = draw(st.lists(st.one_of(clean, clean, odd), max_size=7))
    body = draw(st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n"]))
    if draw(st.integers(0, 2)):
        fields.append(b"Content-Length: %d\r\n" % len(body))
    return line + b"".join(fields) + b"\r\n" + body


def _read(method: bytes, data: bytes, cuts: list[int], fast: bool) -> list[object]:
    from albatross.http1.connection import _Exchange1
    from albatross.http1.upstream import ResponseReader, ResponseStarted, UpstreamProtocolError
    from albatross.proxy.forward import _end_to_end

    reader = ResponseReader(fast=fast)
    reader.expect(method)
    events: list[object] = []
    at = 0
    try:
        for cut in sorted(set(cuts)) + [len(data)]:
            if cut > at:
                events += reader.receive_data(data[at:cut])
                at = cut
        events += reader.end_of_input()
    except UpstreamProtocolError as exc:
        events.append(("error", str(exc)))
    # The head each event gives an HTTP/1.1 client, as the forward handler writes it.
    for event in list(events):
        if isinstance(event, ResponseStarted):
            owner = FakeOwner()
            conn = H1ServerConnection(lambda r, s: Handler(), owner)
            ex = _Exchange1(conn, Request(method, b"/", [], "1.1"), True, lambda r, s: Handler())
            ex.request_done = True
            length = event.content_length if event.framing != "chunked" and event.status != 204 else None
            extra = [(b"Set-Cookie", b"AWSALB=sticky")]
            if event.raw is not None:
                ex.send_head_raw(event.status, event.raw.kept, has_date=event.raw.get(F_DATE) is not None,
                                 extra=extra, content_length=length, head_only=event.framing == "none")
            else:
                ex.send_head(event.status, _end_to_end(event.headers) + extra, content_length=length,
                             head_only=event.framing == "none")
            events.append(re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", b"".join(ex.out)))
    return events


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"GET", b"GET", b"HEAD"]), responses(), st.lists(st.integers(0, 200), max_size=3))
@example(b"GET", b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello", [])
@example(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra", [])
def test_fast_response_path_matches_general_path(method: bytes, data: bytes, cuts: list[int]) -> None:
    assert _read(method, data, cuts, True) == _read(method, data, cuts, False)


def test_fast_response_path_is_taken_and_passes_lines_through() -> None:
    from albatross.http1.upstream import ResponseReader

    reader = ResponseReader()
    reader.expect(b"GET")
    events = reader.receive_data(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\n"
                                 b"Content-Length: 5\r\nETag: \"x\"\r\n\r\nhello")
    started = events[0]
    assert started.raw is not None  # type: ignore[attr-defined]
    assert started.raw.kept == b'Server: nginx\r\nETag: "x"\r\n'  # type: ignore[attr-defined]
    assert started.content_length == 5 and started.keep_alive
    assert [type(e).__name__ for e in events] == ["ResponseStarted", "BodyReceived", "ResponseEnded"]
    assert reader.reusable

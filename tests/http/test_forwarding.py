"""Client request head → target request head: transcripts of ALB §4.3/§5 behaviour."""

from __future__ import annotations

import re

import pytest

from albatross.http import forwarding
from albatross.http.forwarding import (
    BodyFraming,
    ClientSide,
    ForwardingPolicy,
    RequestRejected,
    TraceIds,
    build_target_request,
    build_target_request_for,
    check_request_framing,
    trace_header_value,
)

NOW = 1_700_000_000.0
FRESH = b"1-6553f100-0123456789abcdef01234567"
CLIENT = ClientSide("203.0.113.7", 51234, 443, "https")
ROOT = re.compile(rb"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$")


def forward(method: bytes = b"GET", target: bytes = b"/", headers: list | None = None, *, version: str = "1.1",
            policy: ForwardingPolicy = ForwardingPolicy(), client: ClientSide = CLIENT, authority: bytes | None = None,
            end_stream: bool = False, trace_id: bytes | None = FRESH) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Run both steps as the proxy does; return the request line and the forwarded fields."""
    headers = [(b"Host", b"example.com")] if headers is None else headers
    framing = check_request_framing(method, headers, version, end_stream=end_stream)
    head = build_target_request(method, target, version, headers, framing, client, policy, authority=authority,
                                target_authority=b"10.0.0.9:8080", trace_id=trace_id, now=NOW)
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    return lines[0], [tuple(line.split(b": ", 1)) for line in lines[1:]]  # type: ignore[misc]


def values(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for n, v in fields if n.lower() == name.lower()]


def rejected(status: int, *args, **kwargs) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        forward(*args, **kwargs)
    assert info.value.status == status, info.value.reason
    return info.value


# -- request line, target, Host ---------------------------------------------------------------

def test_request_line_is_http11_origin_form_and_names_keep_their_case() -> None:
    line, fields = forward(b"GET", b"/a/b?c=d", [(b"Host", b"example.com"), (b"X-MiXeD", b"v")], version="1.0")
    assert line == b"GET /a/b?c=d HTTP/1.1"
    assert (b"X-MiXeD", b"v") in fields
    assert fields[0] == (b"Host", b"example.com")
    assert values(fields, b"connection") == []  # persistent by HTTP/1.1 default


def test_absolute_form_becomes_origin_form_with_the_url_host() -> None:
    line, fields = forward(b"GET", b"https://dns_name/x?y=1#frag", [(b"Host", b"example.com")])
    assert line == b"GET /x?y=1 HTTP/1.1"
    assert values(fields, b"host") == [b"dns_name"]
    line, fields = forward(b"GET", b"http://dns_name", [(b"Host", b"example.com")],
                           policy=ForwardingPolicy(preserve_host=True))
    assert line == b"GET / HTTP/1.1"
    assert values(fields, b"host") == [b"example.com"]


def test_absolute_form_with_userinfo_or_bad_scheme_is_rejected() -> None:
    rejected(400, b"GET", b"http://user@dns_name/")
    rejected(400, b"GET", b"ftp://dns_name/")


@pytest.mark.parametrize(("listener", "host", "preserve", "expected"), [
    (443, b"example.com", False, b"example.com"),
    (80, b"example.com:80", False, b"example.com"),
    (443, b"example.com:8443", False, b"example.com"),
    (80, b"example.com:80", True, b"example.com:80"),
    (8080, b"example.com", False, b"example.com:8080"),
    (8080, b"example.com:9000", False, b"example.com:9000"),
    (8080, b"example.com", True, b"example.com"),
    (8080, b"[2001:db8::1]", False, b"[2001:db8::1]:8080"),
    (443, b"[2001:db8::1]:443", False, b"[2001:db8::1]"),
])
def test_host_per_listener_port(listener: int, host: bytes, preserve: bool, expected: bytes) -> None:
    client = ClientSide("203.0.113.7", 5000, listener, "http")
    _, fields = forward(headers=[(b"Host", host)], client=client, policy=ForwardingPolicy(preserve_host=preserve))
    assert values(fields, b"host") == [expected]


def test_host_problems() -> None:
    rejected(400, headers=[(b"Host", b"a.example"), (b"Host", b"b.example")])
    rejected(400, headers=[(b"Accept", b"*/*")])  # HTTP/1.1 without Host
    _, fields = forward(headers=[], version="1.0")
    assert values(fields, b"host") == [b"10.0.0.9:8080"]


def test_http2_host_comes_from_authority_once() -> None:
    _, fields = forward(headers=[(b"host", b"other.example"), (b"accept", b"*/*")], version="2",
                        authority=b"example.com:443", end_stream=True)
    assert values(fields, b"host") == [b"example.com"]


def test_http2_cookie_fields_are_joined() -> None:
    headers = [(b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]
    _, fields = forward(headers=headers, version="2", authority=b"h", end_stream=True)
    assert values(fields, b"cookie") == [b"a=1; b=2; c=3"]
    _, fields = forward(headers=[(b"Host", b"h"), (b"Cookie", b"a=1"), (b"Cookie", b"b=2")])
    assert values(fields, b"cookie") == [b"a=1", b"b=2"]  # HTTP/1: as received


def test_space_or_crlf_in_target_is_rejected() -> None:
    rejected(400, b"GET", b"/a b")
    rejected(400, b"GET", b"/a\r\nX: y")


# -- X-Forwarded-* ----------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "client", "received", "expected"), [
    (ForwardingPolicy(), CLIENT, [], [b"203.0.113.7"]),
    (ForwardingPolicy(), CLIENT, [b"127.0.0.4"], [b"127.0.0.4, 203.0.113.7"]),
    (ForwardingPolicy(), CLIENT, [b"1.1.1.1", b"2.2.2.2, 3.3.3.3"], [b"1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7"]),
    (ForwardingPolicy(xff_client_port=True), CLIENT, [], [b"203.0.113.7:51234"]),
    (ForwardingPolicy(xff_client_port=True), ClientSide("2001:db8::7", 4242, 443, "https"), [b"1.1.1.1"],
     [b"1.1.1.1, [2001:db8::7]:4242"]),
    (ForwardingPolicy(xff_mode="preserve"), CLIENT, [b"1.1.1.1", b"2.2.2.2"], [b"1.1.1.1, 2.2.2.2"]),
    (ForwardingPolicy(xff_mode="preserve", xff_client_port=True), CLIENT, [b"1.1.1.1"], [b"1.1.1.1"]),
    (ForwardingPolicy(xff_mode="preserve"), CLIENT, [], []),
    (ForwardingPolicy(xff_mode="remove"), CLIENT, [b"1.1.1.1"], []),
    (ForwardingPolicy(xff_mode="remove", xff_client_port=True), CLIENT, [], []),
])
def test_x_forwarded_for(policy: ForwardingPolicy, client: ClientSide, received: list[bytes], expected: list[bytes]) -> None:
    headers = [(b"Host", b"example.com")] + [(b"X-Forwarded-For", v) for v in received]
    _, fields = forward(headers=headers, policy=policy, client=client)
    assert values(fields, b"x-forwarded-for") == expected


@pytest.mark.parametrize("mode", ["append", "preserve", "remove"])
def test_more_than_30_received_addresses_is_463(mode: str) -> None:
    thirty = b", ".join(b"10.0.0.%d" % i for i in range(30))
    _, fields = forward(headers=[(b"Host", b"h"), (b"X-Forwarded-For", thirty)], policy=ForwardingPolicy(xff_mode=mode))
    if mode == "append":
        assert values(fields, b"x-forwarded-for")[0].count(b",") == 30  # 31 forwarded
    rejected(463, headers=[(b"Host", b"h"), (b"X-Forwarded-For", thirty + b", 10.0.1.1")], policy=ForwardingPolicy(xff_mode=mode))
    rejected(463, headers=[(b"Host", b"h"), (b"X-Forwarded-For", thirty), (b"X-Forwarded-For", b"10.0.1.1")],
             policy=ForwardingPolicy(xff_mode=mode))


def test_x_forwarded_proto_and_port_replace_client_values() -> None:
    headers = [(b"Host", b"h"), (b"X-Forwarded-Proto", b"https"), (b"x-forwarded-port", b"1")]
    _, fields = forward(headers=headers, client=ClientSide("192.0.2.1", 1, 8080, "http"))
    assert values(fields, b"x-forwarded-proto") == [b"http"]
    assert values(fields, b"x-forwarded-port") == [b"8080"]


def test_policy_and_client_validate_their_values() -> None:
    with pytest.raises(ValueError):
        ForwardingPolicy(xff_mode="replace")
    with pytest.raises(ValueError):
        ForwardingPolicy(desync_mitigation_mode="lenient")
    with pytest.raises(ValueError):
        ClientSide("192.0.2.1", 1, 80, "ftp")


# -- X-Amzn-Trace-Id ----------------------------------------------------------------------------

def test_trace_id_is_generated_when_absent() -> None:
    _, fields = forward(trace_id=None)
    [value] = values(fields, b"x-amzn-trace-id")
    assert ROOT.match(value), value
    assert value[7:15] == b"%08x" % int(NOW)


def test_trace_ids_are_fresh_and_follow_the_clock() -> None:
    ids = TraceIds()
    seen = {ids(NOW) for _ in range(2000)}  # crosses several pool refills
    assert len(seen) == 2000
    assert all(re.fullmatch(rb"1-6553f100-[0-9a-f]{24}", i) for i in seen)
    assert ids(NOW + 16).startswith(b"1-6553f110-")
    before = ids._pool
    forwarding._after_fork()
    assert ids._pool == b"" and ids(NOW)[11:] not in before


@pytest.mark.parametrize(("received", "expected"), [
    (b"Root=1-67891233-abcdef012345678912345678",
     b"Self=%s;Root=1-67891233-abcdef012345678912345678" % FRESH),
    (b"Root=1-67891233-abcdef012345678912345678;CalledFrom=app",
     b"Self=%s;Root=1-67891233-abcdef012345678912345678;CalledFrom=app" % FRESH),
    (b"Self=1-67891233-12456789abcdef0123456789;Root=1-67891233-abcdef012345678912345678;CalledFrom=app",
     b"Self=%s;Root=1-67891233-abcdef012345678912345678;CalledFrom=app" % FRESH),
    (b"Root=1-67891233-abcdef012345678912345678;Self=1-67891233-12456789abcdef0123456789",
     b"Root=1-67891233-abcdef012345678912345678;Self=%s" % FRESH),
])
def test_trace_id_self_is_inserted_or_replaced(received: bytes, expected: bytes) -> None:
    _, fields = forward(headers=[(b"Host", b"h"), (b"X-Amzn-Trace-Id", received)])
    assert values(fields, b"x-amzn-trace-id") == [expected]


@pytest.mark.parametrize("received", [
    b"garbage", b"Root=1-6789-abc", b"Root=2-67891233-abcdef012345678912345678", b"CalledFrom=app",
    b"Root=1-67891233-abcdef012345678912345678;;x=1", b"Root=1-67891233-abcdef012345678912345678;=x",
    b"Self=1-67891233-12456789abcdef0123456789",
    b"Root=1-67891233-abcdef012345678912345678;Root=1-67891233-abcdef012345678912345679",
])
def test_malformed_trace_id_is_replaced_by_a_fresh_root(received: bytes) -> None:
    assert trace_header_value(received, FRESH) == b"Root=" + FRESH


def test_several_trace_lines_or_a_huge_head_get_a_fresh_root() -> None:
    good = b"Root=1-67891233-abcdef012345678912345678"
    _, fields = forward(headers=[(b"Host", b"h"), (b"X-Amzn-Trace-Id", good), (b"X-Amzn-Trace-Id", good)])
    assert values(fields, b"x-amzn-trace-id") == [b"Root=" + FRESH]
    _, fields = forward(headers=[(b"Host", b"h"), (b"X-Amzn-Trace-Id", good), (b"Cookie", b"c" * 7200)])
    assert values(fields, b"x-amzn-trace-id") == [b"Root=" + FRESH]
    _, fields = forward(headers=[(b"Host", b"h"), (b"X-Amzn-Trace-Id", good), (b"Cookie", b"c" * 6000)])
    assert values(fields, b"x-amzn-trace-id") == [b"Self=%s;%s" % (FRESH, good)]


# -- hop-by-hop, upgrades, invalid names ---------------------------------------------------------

def test_hop_by_hop_fields_and_fields_named_by_connection_are_removed() -> None:
    headers = [(b"Host", b"h"), (b"Connection", b"keep-alive, X-Secret"), (b"X-Secret", b"s"),
               (b"Keep-Alive", b"timeout=5"), (b"Proxy-Connection", b"keep-alive"), (b"TE", b"trailers"),
               (b"Connection", b"x-other"), (b"X-Other", b"o"), (b"X-Kept", b"k"), (b"HTTP2-Settings", b"AAA")]
    _, fields = forward(b"GET", b"/", headers)
    names = {n.lower() for n, _ in fields}
    assert names.isdisjoint({b"connection", b"x-secret", b"keep-alive", b"proxy-connection", b"te",
                             b"x-other", b"http2-settings", b"upgrade", b"transfer-encoding"})
    assert (b"X-Kept", b"k") in fields


def test_connection_cannot_remove_fields_albatross_manages() -> None:
    headers = [(b"Host", b"h"), (b"Connection", b"Host, X-Forwarded-For, X-Amzn-Trace-Id, Content-Length"),
               (b"X-Forwarded-For", b"1.1.1.1"), (b"Content-Length", b"2")]
    _, fields = forward(b"POST", b"/", headers)
    assert values(fields, b"host") == [b"h"]
    assert values(fields, b"x-forwarded-for") == [b"1.1.1.1, 203.0.113.7"]
    assert values(fields, b"content-length") == [b"2"]


def test_h2c_upgrade_is_never_forwarded() -> None:
    headers = [(b"Host", b"h"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
               (b"HTTP2-Settings", b"AAMAAABkAAQAAP__")]
    assert check_request_framing(b"GET", headers, "1.1").upgrade is False
    _, fields = forward(b"GET", b"/", headers)
    names = {n.lower() for n, _ in fields}
    assert names.isdisjoint({b"upgrade", b"http2-settings", b"connection"})


def test_websocket_upgrade_is_kept() -> None:
    headers = [(b"Host", b"h"), (b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"WebSocket"),
               (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"Sec-WebSocket-Version", b"13")]
    assert check_request_framing(b"GET", headers, "1.1") == BodyFraming("none", None, True)
    _, fields = forward(b"GET", b"/chat", headers)
    assert values(fields, b"upgrade") == [b"websocket"]
    assert values(fields, b"connection") == [b"upgrade"]
    assert values(fields, b"sec-websocket-key") == [b"dGhlIHNhbXBsZSBub25jZQ=="]


@pytest.mark.parametrize(("method", "version", "headers"), [
    (b"POST", "1.1", [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]),
    (b"GET", "1.0", [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]),
    (b"GET", "1.1", [(b"Upgrade", b"websocket")]),
    (b"GET", "1.1", [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket, h2c")]),
])
def test_not_a_websocket_handshake(method: bytes, version: str, headers: list) -> None:
    headers = [(b"Host", b"h"), *headers]
    assert check_request_framing(method, headers, version).upgrade is False
    _, fields = forward(method, b"/", headers, version=version)
    assert values(fields, b"upgrade") == [] and values(fields, b"connection") == []


def test_drop_invalid_header_fields() -> None:
    headers = [(b"Host", b"h"), (b"X_Underscore", b"1"), (b"x.dot", b"2"), (b"X-Good-1", b"3")]
    _, kept = forward(headers=headers)
    assert (b"X_Underscore", b"1") in kept and (b"x.dot", b"2") in kept
    _, dropped = forward(headers=headers, policy=ForwardingPolicy(drop_invalid_header_fields=True))
    assert values(dropped, b"x_underscore") == [] and values(dropped, b"x.dot") == []
    assert (b"X-Good-1", b"3") in dropped


# -- desync -------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
    [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"0")],
    [(b"Content-Length", b"3"), (b"Content-Length", b"4")],
    [(b"Content-Length", b"3"), (b"Content-Length", b"3")],
    [(b"Content-Length", b"3, 3")],
    [(b"Content-Length", b"-1")], [(b"Content-Length", b"+3")], [(b"Content-Length", b"0x10")],
    [(b"Content-Length", b"")], [(b"Content-Length", b"1 2")], [(b"Content-Length", b"9" * 19)],
    [(b"Transfer-Encoding", b"chunked, identity")], [(b"Transfer-Encoding", b"xchunked")],
    [(b"Transfer-Encoding", b"chunked\x0b")], [(b"Transfer-Encoding", b'"chunked"')],
    [(b"Transfer-Encoding", b"gzip, chunked")], [(b"Transfer-Encoding", b"chunked;q=1")],
    [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
    [(b"Transfer_Encoding", b"chunked")], [(b"Content.Length", b"3")], [(b"Transfer-Encoding ", b"chunked")],
    [(b"Content-Length\t", b"3")], [(b" Folded", b"continuation")], [(b"X-Nul\x00", b"v")],
    [(b"Transfer-Encod\xc4\xb1ng", b"chunked")], [(b"", b"v")],
])
def test_ambiguous_or_invalid_framing_is_400(headers: list) -> None:
    with pytest.raises(RequestRejected) as info:
        check_request_framing(b"POST", [(b"Host", b"h"), *headers], "1.1")
    assert info.value.status == 400


@pytest.mark.parametrize("coding", [b"gzip", b"deflate", b"GZIP", b"gzip, deflate", b"br"])
def test_unsupported_transfer_coding_is_501(coding: bytes) -> None:
    with pytest.raises(RequestRejected) as info:
        check_request_framing(b"POST", [(b"Transfer-Encoding", coding)], "1.1")
    assert info.value.status == 501


@pytest.mark.parametrize(("method", "version", "headers", "expected"), [
    (b"POST", "1.1", [(b"Transfer-Encoding", b" Chunked ")], BodyFraming("chunked")),
    (b"POST", "1.1", [(b"Transfer-Encoding", b"identity")], BodyFraming("none")),
    (b"POST", "1.1", [(b"content-length", b"0042")], BodyFraming("length", 42)),
    (b"POST", "1.1", [], BodyFraming("none")),
    (b"GET", "1.1", [(b"Content-Length", b"0")], BodyFraming("length", 0)),
    (b"DELETE", "1.1", [(b"Content-Length", b"5")], BodyFraming("length", 5)),
    (b"POST", "2", [(b"content-length", b"5")], BodyFraming("length", 5)),
    (b"POST", "2", [], BodyFraming("chunked")),
    (b"GET", "2", [], BodyFraming("none")),
])
def test_accepted_framing(method: bytes, version: str, headers: list, expected: BodyFraming) -> None:
    assert check_request_framing(method, headers, version) == expected


@pytest.mark.parametrize(("method", "version", "headers"), [
    (b"GET", "1.1", [(b"Content-Length", b"5")]),
    (b"HEAD", "1.1", [(b"Content-Length", b"1")]),
    (b"GET", "1.1", [(b"Transfer-Encoding", b"chunked")]),
    (b"POST", "1.0", [(b"Transfer-Encoding", b"chunked")]),
    (b"POST", "2", [(b"transfer-encoding", b"chunked")]),
    (b"GET", "2", [(b"content-length", b"3")]),
])
def test_body_framing_that_targets_may_ignore_is_400(method: bytes, version: str, headers: list) -> None:
    with pytest.raises(RequestRejected) as info:
        check_request_framing(method, headers, version)
    assert info.value.status == 400


def test_trace_and_connect_are_405() -> None:
    rejected(405, b"TRACE", b"/")
    rejected(405, b"CONNECT", b"/")


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\r\n b", b"a\r\nInjected: 1", b"a\x00b"])
def test_cr_lf_nul_and_obs_fold_in_values_are_400(value: bytes) -> None:
    rejected(400, headers=[(b"Host", b"h"), (b"X-Test", value)])
    rejected(400, headers=[(b"Host", value)])
    rejected(400, headers=[(b"host", b"h")], version="2", authority=value, end_stream=True)


# -- framing headers sent to the target ------------------------------------------------------------

@pytest.mark.parametrize(("method", "version", "headers", "end_stream", "cl", "te"), [
    (b"POST", "1.1", [(b"Content-Length", b"5")], False, [b"5"], []),
    (b"POST", "1.1", [(b"Transfer-Encoding", b"chunked")], False, [], [b"chunked"]),
    (b"POST", "1.1", [], False, [b"0"], []),
    (b"PUT", "1.1", [], False, [b"0"], []),
    (b"GET", "1.1", [], False, [], []),
    (b"DELETE", "1.1", [], False, [], []),
    (b"POST", "2", [(b"content-length", b"7")], False, [b"7"], []),
    (b"POST", "2", [], False, [], [b"chunked"]),
    (b"POST", "2", [], True, [b"0"], []),
    (b"GET", "2", [], False, [], []),
])
def test_framing_headers_to_the_target(method: bytes, version: str, headers: list, end_stream: bool,
                                       cl: list, te: list) -> None:
    authority = b"h" if version == "2" else None
    host = [] if version == "2" else [(b"Host", b"h")]
    _, fields = forward(method, b"/", host + headers, version=version, authority=authority, end_stream=end_stream)
    assert values(fields, b"content-length") == cl
    assert values(fields, b"transfer-encoding") == te


def test_full_transcript() -> None:
    headers = [(b"Host", b"shop.example"), (b"User-Agent", b"Mozilla/5.0"), (b"Accept", b"text/html"),
               (b"Connection", b"keep-alive"), (b"X-Forwarded-For", b"198.51.100.1"), (b"Content-Length", b"3")]
    framing = check_request_framing(b"POST", headers, "1.1")
    head = build_target_request(b"POST", b"/cart", "1.1", headers, framing, CLIENT, ForwardingPolicy(),
                                trace_id=FRESH, now=NOW)
    assert head == (
        b"POST /cart HTTP/1.1\r\n"
        b"Host: shop.example\r\n"
        b"User-Agent: Mozilla/5.0\r\n"
        b"Accept: text/html\r\n"
        b"X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n"
        b"X-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Port: 443\r\n"
        b"Content-Length: 3\r\n"
        b"X-Amzn-Trace-Id: Root=" + FRESH + b"\r\n"
        b"\r\n"
    )


def test_adapter_for_front_end_requests() -> None:
    from albatross.http.messages import Request
    h1 = Request(b"GET", b"http://dns_name/p", [(b"host", b"example.com")], "1.1", authority=b"example.com")
    head = build_target_request_for(h1, BodyFraming("none"), CLIENT, ForwardingPolicy(), trace_id=FRESH, now=NOW)
    assert head.startswith(b"GET /p HTTP/1.1\r\nHost: dns_name\r\n")  # the URL's host, not Request.authority
    twice = Request(b"GET", b"/", [(b"host", b"a"), (b"host", b"b")], "1.1", authority=b"a")
    with pytest.raises(RequestRejected):
        build_target_request_for(twice, BodyFraming("none"), CLIENT, ForwardingPolicy(), now=NOW)
    h2 = Request(b"GET", b"/", [(b"accept", b"*/*")], "2", authority=b"example.com:443")
    head = build_target_request_for(h2, BodyFraming("none"), CLIENT, ForwardingPolicy(), trace_id=FRESH, now=NOW)
    assert head.startswith(b"GET / HTTP/1.1\r\nHost: example.com\r\naccept: */*\r\n")

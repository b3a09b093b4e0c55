"""ResponseReader transcripts: bytes from a target in, events out (httptools underneath)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from albatross.http1.upstream import (
    BodyReceived,
    InformationalResponse,
    ResponseEnded,
    ResponseReader,
    ResponseStarted,
    TrailersReceived,
    Upgraded,
    UpstreamClosed,
    UpstreamProtocolError,
    response_headers_for_h2,
    serialize_response_head,
)

CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
           b"5;name=value\r\nhello\r\n6;a=b;c=\"d\"\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")


def normalize(events: list) -> list:
    """Merge adjacent BodyReceived pieces so different splits compare equal."""
    out: list = []
    for event in events:
        if isinstance(event, BodyReceived) and out and isinstance(out[-1], BodyReceived):
            out[-1] = BodyReceived(out[-1].data + event.data)
        elif isinstance(event, BodyReceived) and not event.data:
            continue
        else:
            out.append(event)
    return out


def run(exchanges: list[tuple[bytes, bytes]], pieces: list[list[bytes]] | None = None, **kw) -> tuple[list, ResponseReader]:
    """Each exchange is (method, target bytes); ``pieces`` optionally splits each one."""
    reader = ResponseReader(**kw)
    events: list = []
    for i, (method, data) in enumerate(exchanges):
        reader.expect(method)
        for piece in (pieces[i] if pieces else [data]):
            events += reader.receive_data(piece)
    return normalize(events), reader


def started(status: int = 200, headers: list | None = None, *, framing: str = "length", cl: int | None = None,
            keep_alive: bool = True, reason: bytes = b"OK", version: str = "1.1") -> ResponseStarted:
    return ResponseStarted(status, reason, headers or [], version, keep_alive, framing, cl)


# -- basics -------------------------------------------------------------------------------------

def test_length_response_keeps_header_case_and_is_reusable() -> None:
    events, reader = run([(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-MiXeD: v\r\n\r\nhi")])
    assert events == [started(headers=[(b"Content-Length", b"2"), (b"X-MiXeD", b"v")], cl=2),
                      BodyReceived(b"hi"), ResponseEnded()]
    assert reader.reusable


def test_chunked_with_extensions_and_trailers() -> None:
    events, reader = run([(b"GET", CHUNKED)])
    assert events == [
        started(headers=[(b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Checksum")], framing="chunked"),
        BodyReceived(b"hello world"),
        TrailersReceived([(b"X-Checksum", b"abc"), (b"X-Other", b"1")]),
        ResponseEnded(),
    ]
    assert reader.reusable


def test_head_with_content_length_then_a_second_response() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    expected = [started(headers=[(b"Content-Length", b"1234")], framing="none", cl=1234), ResponseEnded(),
                started(headers=[(b"Content-Length", b"3")], cl=3), BodyReceived(b"abc"), ResponseEnded()]
    events, reader = run([(b"HEAD", head), (b"GET", second)])
    assert events == expected and reader.reusable
    # and a HEAD after a HEAD, with chunked announced
    events, reader = run([(b"HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), (b"HEAD", head)])
    assert [type(e) for e in events] == [ResponseStarted, ResponseEnded, ResponseStarted, ResponseEnded]
    assert events[0].framing == "none" and reader.reusable


def test_bytes_after_a_head_response_make_the_connection_unusable() -> None:
    events, reader = run([(b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")])
    assert [type(e) for e in events] == [ResponseStarted, ResponseEnded]
    assert not reader.reusable


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_ignore_content_length(status: int) -> None:
    first = b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status
    events, reader = run([(b"GET", first), (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")])
    assert events[:2] == [started(status, [(b"Content-Length", b"10")], framing="none", cl=10, reason=b"X"),
                          ResponseEnded()]
    assert events[2:] == [started(headers=[(b"Content-Length", b"1")], cl=1), BodyReceived(b"z"), ResponseEnded()]
    assert reader.reusable


def test_read_until_close() -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    events = reader.receive_data(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ")
    events += reader.receive_data(b"body")
    assert normalize(events) == [started(headers=[(b"Content-Type", b"text/plain")], framing="close", keep_alive=False),
                                 BodyReceived(b"some body")]
    assert reader.end_of_input() == [ResponseEnded()]
    assert not reader.reusable
    with pytest.raises(RuntimeError):
        reader.expect(b"GET")


def test_http10_and_connection_close_are_not_reusable() -> None:
    events, reader = run([(b"GET", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")])
    assert events[0].keep_alive is False and events[0].http_version == "1.0" and not reader.reusable
    events, reader = run([(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")])
    assert events[0].keep_alive is False and not reader.reusable
    events, reader = run([(b"GET", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx")])
    assert events[0].keep_alive is True and reader.reusable


def test_100_continue_then_200_and_103_early_hints() -> None:
    data = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for method in (b"POST", b"HEAD"):
        events, reader = run([(method, data)])
        assert events[:2] == [InformationalResponse(100, []),
                              InformationalResponse(103, [(b"Link", b"</s.css>; rel=preload")])]
        assert events[2].status == 200 and events[-1] == ResponseEnded()
    assert not reader.reusable  # HEAD: "ok" was extra


def test_101_upgrade_hands_over_the_rest() -> None:
    reader = ResponseReader()
    reader.expect(b"GET", upgrade=True)
    events = reader.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\n\r\n\x81\x05hello")
    assert events == [Upgraded(101, [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")], b"\x81\x05hello",
                               b"Switching Protocols")]
    assert not reader.reusable
    with pytest.raises(RuntimeError):
        reader.receive_data(b"more")


def test_upgrade_request_answered_without_101_is_a_normal_response() -> None:
    reader = ResponseReader()
    reader.expect(b"GET", upgrade=True)
    events = reader.receive_data(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")
    assert events[0].status == 426 and events[-1] == ResponseEnded() and reader.reusable


def test_101_without_an_upgrade_request_is_an_error() -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    with pytest.raises(UpstreamProtocolError):
        reader.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nFoo : bar\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nFoo: a\r\n folded\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nFoo: a\x00b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_responses_raise(data: bytes) -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    with pytest.raises(UpstreamProtocolError):
        reader.receive_data(data)
    assert not reader.reusable
    with pytest.raises(UpstreamProtocolError):  # the failure is sticky
        reader.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")


def test_oversize_header_block() -> None:
    for method in (b"GET", b"HEAD"):
        reader = ResponseReader(max_header_bytes=1024)
        reader.expect(method)
        with pytest.raises(UpstreamProtocolError, match="larger than the limit"):
            reader.receive_data(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    reader = ResponseReader(max_header_bytes=1024)  # many small fields, fed in pieces, head never ends
    reader.expect(b"GET")
    with pytest.raises(UpstreamProtocolError):
        reader.receive_data(b"HTTP/1.1 200 OK\r\n")
        for i in range(200):
            reader.receive_data(b"X-%d: v\r\n" % i)
    reader = ResponseReader(max_header_bytes=1024)  # just under the limit passes
    reader.expect(b"GET")
    events = reader.receive_data(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 900 + b"\r\nContent-Length: 0\r\n\r\n")
    assert events[-1] == ResponseEnded()


def test_default_limit_is_32_kib() -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    with pytest.raises(UpstreamProtocolError):
        reader.receive_data(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (32 * 1024) + b"\r\n\r\n")


def test_truncated_body_at_end_of_input() -> None:
    for data in (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                 b"HTTP/1.1 200 OK\r\nContent-"):
        reader = ResponseReader()
        reader.expect(b"GET")
        reader.receive_data(data)
        with pytest.raises(UpstreamClosed, match="closed before the response was complete") as info:
            reader.end_of_input()
        assert info.value.response_started is True


def test_closed_before_any_byte_and_idle_close() -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    with pytest.raises(UpstreamClosed) as info:
        reader.end_of_input()
    assert info.value.response_started is False
    reader = ResponseReader()
    assert reader.end_of_input() == [] and not reader.reusable


def test_extra_and_unsolicited_bytes_make_the_connection_unusable() -> None:
    events, reader = run([(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n")])
    assert events == [started(headers=[(b"Content-Length", b"1")], cl=1), BodyReceived(b"x"), ResponseEnded()]
    assert not reader.reusable
    events, reader = run([(b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nxjunk")])
    assert events[-1] == ResponseEnded() and not reader.reusable
    reader = ResponseReader()
    assert reader.receive_data(b"HTTP/1.1 408 Request Timeout\r\n\r\n") == []
    assert not reader.reusable
    with pytest.raises(RuntimeError):
        reader.expect(b"GET")


def test_expect_during_a_response_is_refused() -> None:
    reader = ResponseReader()
    reader.expect(b"GET")
    reader.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    with pytest.raises(RuntimeError):
        reader.expect(b"GET")


# -- split input ----------------------------------------------------------------------------------

TRANSCRIPT = [
    (b"POST", b"HTTP/1.1 100 Continue\r\n\r\n" + CHUNKED),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nX-A: b\r\n\r\n"),
    (b"GET", b"HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n"),
    (b"GET", b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 10\r\n\r\n0123456789"),
    (b"HEAD", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
]


def test_every_split_point_gives_the_same_events() -> None:
    expected, reader = run(TRANSCRIPT)
    assert reader.reusable and len(expected) == 17
    for i, (_, data) in enumerate(TRANSCRIPT):
        for cut in range(1, len(data)):
            pieces = [[d] for _, d in TRANSCRIPT]
            pieces[i] = [data[:cut], data[cut:]]
            got, reader = run(TRANSCRIPT, pieces)
            assert got == expected, (i, cut)
            assert reader.reusable


def test_byte_at_a_time() -> None:
    expected, _ = run(TRANSCRIPT)
    got, reader = run(TRANSCRIPT, [[d[i:i + 1] for i in range(len(d))] for _, d in TRANSCRIPT])
    assert got == expected and reader.reusable


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(min_value=1, max_value=400), max_size=8), min_size=len(TRANSCRIPT),
                max_size=len(TRANSCRIPT)))
def test_random_splits(cuts: list[list[int]]) -> None:
    expected, _ = run(TRANSCRIPT)
    pieces = []
    for (_, data), points in zip(TRANSCRIPT, cuts):
        bounds = sorted({0, len(data), *(p % len(data) for p in points)})
        pieces.append([data[a:b] for a, b in zip(bounds, bounds[1:])])
    got, reader = run(TRANSCRIPT, pieces)
    assert got == expected and reader.reusable


def test_split_upgrade_hands_over_exactly_the_tunnel_bytes() -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nTUNNEL"
    for cut in range(1, len(data)):
        reader = ResponseReader()
        reader.expect(b"GET", upgrade=True)
        events = reader.receive_data(data[:cut])
        if events:
            tunnel = events[0].rest + data[cut:]  # the caller relays what follows directly
        else:
            events = reader.receive_data(data[cut:])
            tunnel = events[0].rest
        assert [type(e) for e in events] == [Upgraded] and tunnel == b"TUNNEL", cut


def test_split_read_until_close_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end"
    for cut in range(1, len(data)):
        reader = ResponseReader()
        reader.expect(b"GET")
        events = normalize(reader.receive_data(data[:cut]) + reader.receive_data(data[cut:]) + reader.end_of_input())
        assert events == [started(headers=[(b"X", b"y")], framing="close", keep_alive=False),
                          BodyReceived(b"until the end"), ResponseEnded()], cut


# -- serializing ------------------------------------------------------------------------------------

HOPPY = started(200, [
    (b"Server", b"nginx"), (b"Connection", b"keep-alive, X-Internal"), (b"Keep-Alive", b"timeout=5"),
    (b"X-Internal", b"secret"), (b"Transfer-Encoding", b"chunked"), (b"Proxy-Connection", b"x"),
    (b"TE", b"trailers"), (b"Upgrade", b"h2c"), (b"Trailer", b"X-Checksum"), (b"Content-Type", b"text/html"),
], framing="chunked", reason=b"Very OK")


def test_serialize_chunked_keep_alive() -> None:
    head = serialize_response_head(HOPPY, client_http_version="1.1", keep_alive=True, framing_to_client="chunked",
                                   extra_headers=[(b"Set-Cookie", b"AWSALB=abc")])
    assert head == (b"HTTP/1.1 200 Very OK\r\nServer: nginx\r\nTrailer: X-Checksum\r\nContent-Type: text/html\r\n"
                    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nSet-Cookie: AWSALB=abc\r\n\r\n")


def test_serialize_for_http10_close_and_length() -> None:
    head = serialize_response_head(HOPPY, client_http_version="1.0", keep_alive=False, framing_to_client="close")
    assert b"Trailer" not in head and b"Transfer-Encoding" not in head and head.endswith(b"Connection: close\r\n\r\n")
    with pytest.raises(ValueError):
        serialize_response_head(HOPPY, client_http_version="1.0", keep_alive=False, framing_to_client="chunked")
    length = started(200, [(b"Content-Length", b"5"), (b"Date", b"d")], cl=5)
    assert serialize_response_head(length, client_http_version="1.1", keep_alive=True, framing_to_client="length") == \
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: d\r\nConnection: keep-alive\r\n\r\n"
    assert b"Content-Length" not in serialize_response_head(length, client_http_version="1.1", keep_alive=False,
                                                            framing_to_client="close")
    head_answer = started(200, [(b"Content-Length", b"5000")], framing="none", cl=5000)
    assert b"Content-Length: 5000\r\n" in serialize_response_head(head_answer, client_http_version="1.1",
                                                                  keep_alive=True, framing_to_client="none")


def test_serialize_101_keeps_upgrade() -> None:
    event = Upgraded(101, [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Accept", b"k")],
                     b"", b"Switching Protocols")
    assert serialize_response_head(event, client_http_version="1.1", keep_alive=True, framing_to_client="none") == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\n"
        b"Connection: upgrade\r\n\r\n")


def test_headers_for_h2() -> None:
    assert response_headers_for_h2(HOPPY) == [(b"server", b"nginx"), (b"trailer", b"X-Checksum"),
                                              (b"content-type", b"text/html")]
    length = started(200, [(b"Content-Length", b"5"), (b"X-Y", b"z")], cl=5)
    assert response_headers_for_h2(length) == [(b"content-length", b"5"), (b"x-y", b"z")]

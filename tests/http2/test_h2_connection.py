"""H2Connection driven in memory by the pure-Python ``h2`` client (an independent implementation)."""

from __future__ import annotations

import gc

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
import pytest

from tests.helpers import c_heap_in_use
from hyperframe.frame import ContinuationFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

from albatross.http2 import (
    ConnectionTerminated,
    DataReceived,
    H2Connection,
    H2Error,
    H2ProtocolError,
    H2StateError,
    H2StreamClosedError,
    RequestReceived,
    StreamClosed,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)

CANCEL = h2.errors.ErrorCodes.CANCEL
PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
REFUSED_STREAM = h2.errors.ErrorCodes.REFUSED_STREAM
ENHANCE_YOUR_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def request(method: bytes = b"GET", path: bytes = b"/", extra: tuple = ()) -> list[tuple[bytes, bytes]]:
    return [(b":method", method), (b":path", path), (b":scheme", b"https"), (b":authority", b"example.com"), *extra]


class Pair:
    """An h2 client and an H2Connection server, wired back to back in memory."""

    def __init__(self, *, validate: bool = True, **server_options) -> None:
        self.server = H2Connection(**server_options)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
        )
        self.client = h2.connection.H2Connection(config)
        self.client.initiate_connection()

    def to_server(self) -> list:
        return self.server.receive_data(self.client.data_to_send())

    def to_client(self) -> list:
        return self.client.receive_data(self.server.data_to_send())

    def handshake(self) -> None:
        assert self.to_server() == []
        self.to_client()
        self.to_server()

    def client_events(self, kind: type) -> list:
        return [e for e in self.to_client() if isinstance(e, kind)]


def parse_frames(data: bytes) -> list[Frame]:
    frames, off = [], 0
    while off + 9 <= len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[off : off + 9]))
        frame.parse_body(memoryview(data[off + 9 : off + 9 + length]))
        frames.append(frame)
        off += 9 + length
    return frames


def goaway_frames(data: bytes) -> list[GoAwayFrame]:
    return [f for f in parse_frames(data) if isinstance(f, GoAwayFrame)]


@pytest.fixture
def pair():
    p = Pair()
    p.handshake()
    yield p
    p.server.free()


def test_get_roundtrip(pair):
    pair.client.send_headers(1, request(extra=((b"user-agent", b"t"),)), end_stream=True)
    assert pair.to_server() == [RequestReceived(1, request(extra=((b"user-agent", b"t"),)), True)]
    pair.server.submit_response(1, 200, [(b"content-type", b"text/plain"), (b"content-length", b"5")], b"hello")
    events = pair.to_client()
    response = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert response[0].headers == [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"5")]
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"hello"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    # The close caused by sending END_STREAM is reported on the next receive_data.
    assert pair.server.receive_data(b"") == [StreamClosed(1, 0)]
    assert pair.server.requests_received == 1


def test_head_response_without_body(pair):
    pair.client.send_headers(1, request(b"HEAD"), end_stream=True)
    assert pair.to_server()[0].headers[0] == (b":method", b"HEAD")
    pair.server.submit_response(1, 200, [(b"content-length", b"1234")])
    events = pair.to_client()
    assert [type(e) for e in events if not isinstance(e, h2.events.SettingsAcknowledged)] == [
        h2.events.ResponseReceived,
        h2.events.StreamEnded,
    ]
    assert events[0].headers[1] == (b"content-length", b"1234")


def test_post_body_and_consume(pair):
    body = bytes(range(256)) * 40
    pair.client.send_headers(1, request(b"POST", extra=((b"content-length", str(len(body)).encode()),)))
    pair.client.send_data(1, body, end_stream=True)
    events = pair.to_server()
    assert events[0] == RequestReceived(1, request(b"POST", extra=((b"content-length", b"10240"),)), False)
    data = [e for e in events[1:] if isinstance(e, DataReceived)]
    assert b"".join(e.data for e in data) == body
    assert data[-1].end_stream and len(data) == len(events) - 1
    window = pair.client.outbound_flow_control_window
    pair.server.consume(1, len(body))
    pair.server.submit_response(1, 204, [])
    pair.to_client()
    assert pair.client.outbound_flow_control_window == window  # below half a window: no update yet
    assert pair.client.remote_settings.initial_window_size == 256 * 1024


def test_settings_advertise_128_streams(pair):
    assert pair.client.remote_settings.max_concurrent_streams == 128
    for i in range(128):
        pair.client.send_headers(1 + 2 * i, request(), end_stream=True)
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        pair.client.send_headers(257, request(), end_stream=True)
    assert len(pair.to_server()) == 128


def test_flow_control_backpressure():
    p = Pair(initial_window_size=65_535, connection_window_size=65_535)
    p.handshake()
    p.client.send_headers(1, request(b"POST"))
    sent = p.client.local_flow_control_window(1)
    for off in range(0, sent, 16_384):
        p.client.send_data(1, b"x" * min(16_384, sent - off))
    received = sum(len(e.data) for e in p.to_server() if isinstance(e, DataReceived))
    assert received == sent
    p.to_client()
    assert p.client.local_flow_control_window(1) == 0  # stalled: nothing was consumed
    p.to_server()
    p.to_client()
    assert p.client.local_flow_control_window(1) == 0
    p.server.consume(1, received)
    updates = p.client_events(h2.events.WindowUpdated)
    assert {u.stream_id for u in updates} == {0, 1}
    assert p.client.local_flow_control_window(1) == sent
    p.client.send_data(1, b"y" * 1000, end_stream=True)
    assert p.to_server()[-1] == DataReceived(1, b"y" * 1000, True)


def test_streamed_response_with_deferred_data(pair):
    pair.client.send_headers(1, request(), end_stream=True)
    pair.to_server()
    pair.server.submit_response(1, 200, [(b"content-type", b"text/event-stream")], end_stream=False)
    events = pair.to_client()
    assert any(isinstance(e, h2.events.ResponseReceived) for e in events)
    assert not any(isinstance(e, h2.events.DataReceived) for e in events)
    assert not pair.server.want_write  # deferred, not busy-polled
    chunks = []
    for i, piece in enumerate([b"one,", b"two,", b"three"]):
        pair.server.send_data(1, piece, end_stream=i == 2)
        assert pair.server.outbound_buffered(1) == len(piece)
        events = pair.to_client()
        chunks += [e.data for e in events if isinstance(e, h2.events.DataReceived)]
        assert any(isinstance(e, h2.events.StreamEnded) for e in events) == (i == 2)
    assert chunks == [b"one,", b"two,", b"three"]
    with pytest.raises(H2StreamClosedError):
        pair.server.send_data(1, b"late")


def test_trailers_both_ways(pair):
    pair.client.send_headers(1, request(b"POST", extra=((b"te", b"trailers"),)))
    pair.client.send_data(1, b"payload")
    pair.client.send_headers(1, [(b"x-checksum", b"abc")], end_stream=True)
    events = pair.to_server()
    assert events[1:] == [DataReceived(1, b"payload", False), TrailersReceived(1, [(b"x-checksum", b"abc")], True)]
    pair.server.submit_response(1, 200, [(b"content-type", b"application/grpc")], b"body", end_stream=False)
    pair.server.send_trailers(1, [(b"grpc-status", b"0"), (b"grpc-message", b"ok")])
    events = pair.to_client()
    trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert trailers[0].headers == [(b"grpc-status", b"0"), (b"grpc-message", b"ok")]
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"body"
    assert isinstance(events[-1], h2.events.StreamEnded)


def test_reset_by_server_and_by_client(pair):
    pair.client.send_headers(1, request(), end_stream=True)
    pair.client.send_headers(3, request(b"POST"))
    pair.to_server()
    pair.server.submit_response(1, 200, [], end_stream=False)
    pair.server.send_data(1, b"partial")
    pair.server.reset_stream(1)
    resets = pair.client_events(h2.events.StreamReset)
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, CANCEL)]
    with pytest.raises(H2StreamClosedError):
        pair.server.send_data(1, b"more")
    pair.client.reset_stream(3, error_code=CANCEL)
    events = pair.to_server()
    assert StreamReset(3, CANCEL) in events and StreamClosed(1, CANCEL) in events
    assert isinstance(StreamReset(3, CANCEL), StreamClosed)


@pytest.mark.parametrize("budget", [10, 1000])
def test_rapid_reset_flood_gets_enhance_your_calm(budget):
    p = Pair() if budget == 1000 else Pair(max_resets=budget)
    p.handshake()
    for i in range(budget + 5):
        p.client.send_headers(1 + 2 * i, request(), end_stream=True)
        p.client.reset_stream(1 + 2 * i, error_code=CANCEL)
        p.to_server()
    terminated = p.client_events(h2.events.ConnectionTerminated)
    assert terminated[0].error_code == ENHANCE_YOUR_CALM
    assert not p.server.want_read and not p.server.want_write
    p.server.free()


def test_below_reset_budget_the_connection_lives():
    p = Pair(max_resets=10)
    p.handshake()
    for i in range(10):
        p.client.send_headers(1 + 2 * i, request(), end_stream=True)
        p.client.reset_stream(1 + 2 * i)
    p.to_server()
    assert p.client_events(h2.events.ConnectionTerminated) == []
    assert p.server.want_read


def test_request_cap_sends_goaway_and_refuses_later_streams():
    p = Pair(max_requests=3)
    p.handshake()
    for sid in (1, 3, 5, 7, 9):
        p.client.send_headers(sid, request(), end_stream=True)
    events = p.to_server()
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [1, 3, 5]
    for sid in (1, 3, 5):
        p.server.submit_response(sid, 200, [])
    # h2's client state machine rejects frames after GOAWAY, so read the frames directly.
    frames = parse_frames(p.server.data_to_send())
    goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [(g.error_code, g.last_stream_id) for g in goaway] == [(0, 5)]
    refused = {(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)}
    assert refused == {(7, REFUSED_STREAM), (9, REFUSED_STREAM)}
    assert {f.stream_id for f in frames if isinstance(f, HeadersFrame)} == {1, 3, 5}
    assert p.server.requests_received == 3
    p.server.receive_data(b"")
    assert not p.server.want_read and not p.server.want_write


@pytest.mark.parametrize("bad", [(b"X-Upper", b"1"), (b"connection", b"keep-alive"), (b"te", b"gzip")])
def test_invalid_request_header_resets_the_stream(bad):
    p = Pair(validate=False)
    p.handshake()
    p.client.send_headers(1, request(extra=(bad,)), end_stream=True)
    p.client.send_headers(3, request(), end_stream=True)
    events = p.to_server()
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [3]
    resets = p.client_events(h2.events.StreamReset)
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, PROTOCOL_ERROR)]


def test_oversized_header_list_resets_the_stream():
    p = Pair(max_header_list_size=1024)
    p.handshake()
    p.client.send_headers(1, request(extra=((b"x-big", b"v" * 2000),)), end_stream=True)
    p.client.send_headers(3, request(), end_stream=True)
    assert [e.stream_id for e in p.to_server() if isinstance(e, RequestReceived)] == [3]
    assert [r.stream_id for r in p.client_events(h2.events.StreamReset)] == [1]


def test_garbage_raises_protocol_error_with_goaway():
    server = H2Connection()
    with pytest.raises(H2ProtocolError) as info:
        server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(info.value, H2Error) and info.value.lib_error < -900
    goaways = goaway_frames(server.data_to_send())
    assert [g.error_code for g in goaways] == [PROTOCOL_ERROR]
    assert not server.want_read and not server.want_write
    with pytest.raises(H2ProtocolError):
        server.receive_data(b"more")


def test_continuation_flood_gets_enhance_your_calm():
    p = Pair(max_continuations=4)
    preface = p.client.data_to_send()
    block = hpack.Encoder().encode(request(extra=tuple((b"x-h%d" % i, b"v" * 20) for i in range(20))))
    pieces = [block[i : i + 20] for i in range(0, len(block), 20)]
    assert len(pieces) > 6
    frames = [HeadersFrame(1, pieces[0], flags=["END_STREAM"]).serialize()]
    frames += [ContinuationFrame(1, piece).serialize() for piece in pieces[1:-1]]
    frames.append(ContinuationFrame(1, pieces[-1], flags=["END_HEADERS"]).serialize())
    with pytest.raises(H2ProtocolError):
        p.server.receive_data(preface + b"".join(frames))
    assert [g.error_code for g in goaway_frames(p.server.data_to_send())] == [ENHANCE_YOUR_CALM]


def test_continuation_within_budget_is_accepted():
    p = Pair(max_continuations=8)
    preface = p.client.data_to_send()
    block = hpack.Encoder().encode(request())
    frames = HeadersFrame(1, block[:5], flags=["END_STREAM"]).serialize()
    frames += ContinuationFrame(1, block[5:], flags=["END_HEADERS"]).serialize()
    assert p.server.receive_data(preface + frames) == [RequestReceived(1, request(), True)]


def test_header_block_split_across_reads(pair):
    pair.client.send_headers(1, request(extra=((b"x-long", b"z" * 300),)), end_stream=True)
    data = pair.client.data_to_send()
    events = []
    for i in range(0, len(data), 7):
        events += pair.server.receive_data(data[i : i + 7])
        pair.server.data_to_send()
    assert events == [RequestReceived(1, request(extra=((b"x-long", b"z" * 300),)), True)]


def test_graceful_close_lets_open_streams_finish(pair):
    pair.client.send_headers(1, request(), end_stream=True)
    pair.to_server()
    pair.server.close()
    goaway = pair.client_events(h2.events.ConnectionTerminated)
    assert (goaway[0].error_code, goaway[0].last_stream_id) == (0, 1)
    assert pair.server.want_read
    pair.server.submit_response(1, 200, [], b"done")
    assert b"done" in pair.server.data_to_send()
    pair.server.receive_data(b"")
    assert not pair.server.want_read and not pair.server.want_write


def test_client_goaway_is_reported(pair):
    pair.client.close_connection(error_code=0, last_stream_id=0)
    assert pair.to_server() == [ConnectionTerminated(0, 0)]


def test_empty_data_frame_end_stream_reports_stream_ended(pair):
    pair.client.send_headers(1, request(b"POST"))
    pair.client.send_data(1, b"abc")
    assert pair.to_server()[-1] == DataReceived(1, b"abc", False)
    pair.client.end_stream(1)
    assert pair.to_server() == [StreamEnded(1)]


def test_bounded_drain(pair):
    pair.client.send_headers(1, request(), end_stream=True)
    pair.to_server()
    pair.server.submit_response(1, 200, [], b"b" * 50_000)
    chunks = []
    while pair.server.want_write:
        chunk = pair.server.data_to_send(4096)
        assert 0 < len(chunk) <= 4096
        chunks.append(chunk)
    events = pair.client.receive_data(b"".join(chunks))
    assert sum(len(e.data) for e in events if isinstance(e, h2.events.DataReceived)) == 50_000


def test_api_misuse_and_teardown(pair):
    with pytest.raises(H2StreamClosedError):
        pair.server.submit_response(99, 200, [])
    with pytest.raises(H2Error):
        pair.server.submit_response(1, 200, [(b"x-bad", b"a\0b")])
    pair.client.send_headers(1, request(), end_stream=True)
    pair.to_server()
    pair.server.submit_response(1, 200, [], b"x" * 100_000, end_stream=False)
    pair.server.send_data(1, b"y" * 100_000)
    pair.server.free()  # open stream with buffered body: freed without a crash
    pair.server.free()
    assert not pair.server.want_read and pair.server.data_to_send() == b""
    with pytest.raises(H2StateError):
        pair.server.receive_data(b"x")


def _run_connection(requests: int) -> None:
    p = Pair()
    p.handshake()
    body = b"r" * 16_384
    for i in range(requests):
        sid = 1 + 2 * i
        p.client.send_headers(sid, request(b"POST"))
        p.client.send_data(sid, b"q" * 1000, end_stream=True)
        for event in p.to_server():
            if isinstance(event, DataReceived):
                p.server.consume(event.stream_id, len(event.data))
        p.server.submit_response(sid, 200, [(b"content-length", b"16384")], body)
        for event in p.to_client():
            if isinstance(event, h2.events.DataReceived):
                p.client.acknowledge_received_data(event.flow_controlled_length, sid)
    p.server.free()


def test_1000_requests_do_not_leak():
    _run_connection(200)  # warm up allocator pools and caches
    gc.collect()
    before = c_heap_in_use()
    for _ in range(5):
        _run_connection(200)
    gc.collect()
    grown = c_heap_in_use() - before
    # 1000 responses of 16 KiB each: leaking even the bodies alone would add ~16 MB.
    assert grown < 2_000_000, grown

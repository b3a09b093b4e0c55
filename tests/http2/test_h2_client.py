"""The HTTP/2 client session (albatross.http2.client) against Albatross's own server session, in memory."""

from __future__ import annotations

from albatross.http2 import (
    H2ClientConnection,
    H2Connection,
    RequestReceived,
    ResponseReceived,
    SettingsReceived,
    StreamClosed,
)
from albatross.http2.client import SETTING_NAMES

HEAD = [(b":method", b"HEAD"), (b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/"),
        (b"user-agent", b"test")]


def test_request_response_and_the_servers_settings() -> None:
    client, server = H2ClientConnection(), H2Connection()
    sid = client.submit_request(HEAD)
    assert sid == 1
    received = server.receive_data(client.data_to_send())
    requests = [e for e in received if isinstance(e, RequestReceived)]
    assert len(requests) == 1 and requests[0].end_stream
    assert dict(requests[0].headers)[b":method"] == b"HEAD"
    assert not any(isinstance(e, SettingsReceived) for e in received)  # a server session never reports them
    server.submit_response(sid, 200, [(b"server", b"albatross")])
    events = client.receive_data(server.data_to_send())
    settings = [e for e in events if isinstance(e, SettingsReceived)]
    assert len(settings) == 1
    named = {SETTING_NAMES[k]: v for k, v in settings[0].settings}
    assert named == {"MAX_CONCURRENT_STREAMS": 128, "INITIAL_WINDOW_SIZE": 256 * 1024, "MAX_HEADER_LIST_SIZE": 65536}
    response = next(e for e in events if isinstance(e, ResponseReceived))
    assert (response.stream_id, response.status, response.end_stream) == (1, 200, True)
    assert (b"server", b"albatross") in response.headers
    assert any(isinstance(e, StreamClosed) and e.stream_id == 1 for e in events)
    client.free()
    server.free()


def test_settings_ack_is_not_reported_as_settings() -> None:
    client, server = H2ClientConnection(), H2Connection()
    server.receive_data(client.data_to_send())
    first = client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the client ACKs the server's SETTINGS
    later = client.receive_data(server.data_to_send())  # the server's ACK of ours
    assert sum(isinstance(e, SettingsReceived) for e in first + later) == 1


def test_a_server_that_does_not_start_with_settings_ends_the_session() -> None:
    client = H2ClientConnection()
    client.submit_request(HEAD)
    client.data_to_send()
    assert client.want_read
    client.receive_data(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # a SETTINGS ACK first: not a preface
    goaway = client.data_to_send()
    assert goaway[3] == 0x7 and b"SETTINGS expected" in goaway
    assert not client.want_read

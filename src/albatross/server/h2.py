"""HTTP/2 front end: :class:`albatross.http2.H2Connection` events -> application -> responses."""

from __future__ import annotations

import logging
from collections.abc import Callable

from albatross.http.messages import DATE, SERVER, Request, Response
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

App = Callable[[Request], Response]
_PSEUDO = {b":method", b":path", b":authority", b":scheme"}


class H2Server:
    """Answers each complete request stream with the application's response."""

    __slots__ = ("app", "send", "connection", "h2", "must_close", "_pending")

    def __init__(self, app: App, send: Callable[[bytes], None], connection: object,
                 max_concurrent_streams: int = 128) -> None:
        self.app = app
        self.send = send
        self.connection = connection
        self.h2 = H2Connection(max_concurrent_streams=max_concurrent_streams)
        self.must_close = False
        self._pending: dict[int, Request] = {}  # stream id -> request waiting for its body's end
        self._flush()  # our SETTINGS go out first

    def idle(self) -> bool:
        return not self._pending

    def connection_lost(self) -> None:
        self._pending.clear()
        self.h2.free()

    def _flush(self) -> None:
        out = self.h2.data_to_send()
        if out:
            self.send(out)

    def receive_data(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except H2Error as exc:
            log.info("HTTP/2 protocol error: %s", exc)
            self._flush()
            self.must_close = True
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self._request(event)
            elif isinstance(event, DataReceived):
                self.h2.consume(event.stream_id, len(event.data))
                if event.end_stream:
                    self._respond(event.stream_id)
            elif isinstance(event, (StreamEnded, TrailersReceived)):
                self._respond(event.stream_id)
            elif isinstance(event, StreamClosed):  # reset by the client, or refused
                self._pending.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.must_close = True
        self._flush()
        if not self.h2.want_read and not self.h2.want_write:
            self.must_close = True

    def _request(self, event: RequestReceived) -> None:
        pseudo = {}
        headers = []
        for name, value in event.headers:
            if name in _PSEUDO:
                pseudo[name] = value
            else:
                headers.append((name, value))
        request = Request(pseudo.get(b":method", b"GET"), pseudo.get(b":path", b"/"), headers, "2",
                          pseudo.get(b":authority"), pseudo.get(b":scheme", b"https"), self.connection)
        self._pending[event.stream_id] = request
        if event.end_stream:
            self._respond(event.stream_id)

    def _respond(self, stream_id: int) -> None:
        request = self._pending.pop(stream_id, None)
        if request is None:
            return
        response = self.app(request)
        headers = [(b"date", DATE.value()), (b"server", SERVER)]
        headers += [(n.lower(), v) for n, v in response.headers]
        headers.append((b"content-length", b"%d" % len(response.body)))
        body = None if request.method == b"HEAD" else response.body
        self.h2.submit_response(stream_id, response.status, headers, body)

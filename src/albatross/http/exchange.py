"""The seam between the client-facing codecs and what answers requests.

A codec (HTTP/1.1 or HTTP/2) turns each request into a call ``app(request, responder)``,
which returns a :class:`Handler`. The codec then streams the request body into the handler
and the handler streams the response out through the :class:`Responder`. ``send_head`` and
``send_body`` gather; ``flush`` (and ``end``) write, so a response that arrives in one read
leaves in one write, and over TLS in one record. Flow control runs
both ways: the codec calls ``handler.pause()``/``resume()`` when the client stops/starts
reading responses, and the handler calls ``responder.pause_request_body()``/``resume...``
when whatever consumes the body falls behind.

The proxy (``albatross.proxy``) and the built-in page (:func:`static`) are both apps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from albatross.http.messages import Headers, Request, Response


class Responder(Protocol):
    """The client side of one request, as the application sees it."""

    def send_informational(self, status: int, headers: Headers) -> None: ...
    def send_head(self, status: int, headers: Headers, *, content_length: int | None = None,
                  head_only: bool = False) -> None: ...
    def send_head_raw(self, status: int, fields: bytes, *, has_date: bool, extra: Headers,
                      content_length: int | None = None, head_only: bool = False) -> None:
        """HTTP/1.x only: like send_head, with the fields already in wire form."""
    def send_body(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def end(self, trailers: Headers | None = None) -> None: ...
    def abort(self) -> None: ...
    def pause_request_body(self) -> None: ...
    def resume_request_body(self) -> None: ...
    def send_upgrade(self, status: int, headers: Headers) -> None: ...
    def send_raw(self, data: bytes) -> None: ...


class Handler:
    """What the application does with one request; the base class ignores everything."""

    def body(self, data: bytes) -> None:
        """A piece of the request body."""

    def end(self, trailers: Headers | None = None) -> None:
        """The request is complete."""

    def client_gone(self) -> None:
        """The client closed or reset before the response was complete."""

    def pause(self) -> None:
        """The client is not reading the response: stop producing it."""

    def resume(self) -> None:
        """The client reads again."""

    def wants_tunnel(self) -> bool:
        """True when this handler forwards a protocol upgrade (WebSocket) and can tunnel."""
        return False

    def tunnel_data(self, data: bytes) -> None:
        """Raw bytes from the client after an accepted upgrade."""


App = Callable[[Request, Responder], Handler]


class _StaticHandler(Handler):
    __slots__ = ("page", "request", "responder")

    def __init__(self, page: Callable[[Request], Response], request: Request, responder: Responder) -> None:
        self.page = page
        self.request = request
        self.responder = responder

    def client_gone(self) -> None:
        if self.request.record is not None:
            self.request.record.client_gone()  # ALB's 460

    def end(self, trailers: Headers | None = None) -> None:
        response = self.page(self.request)
        r = self.responder
        head_only = self.request.method == b"HEAD"
        r.send_head(response.status, response.headers, content_length=len(response.body), head_only=head_only)
        if response.body and not head_only:
            r.send_body(response.body)
        r.end()


def static(page: Callable[[Request], Response]) -> App:
    """An app that answers each complete request with ``page(request)``."""

    def app(request: Request, responder: Responder) -> Handler:
        return _StaticHandler(page, request, responder)

    return app

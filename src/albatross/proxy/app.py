"""The application a listener runs: its rules, evaluated for every request, then the action.

Actions are ALB's: ``forward`` (one target group, or several by weight), ``redirect`` and
``fixed-response``. The router (``router.py``) is pure; this module turns its decision into a
handler for the front-end codec.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from albatross.http.exchange import App, Handler, Responder, static
from albatross.http.forwarding import ClientSide, ForwardingPolicy
from albatross.http.messages import SERVER, Headers, Request, Response
from albatross.http1.connection import error_response
from albatross.proxy.forward import Forward, TargetGroupRuntime, request_cookies
from albatross.targets.group import TG_COOKIE, decode_sticky, encode_sticky, lb_cookie_value, lb_cookie_headers
from albatross.proxy.router import RequestView, Router, redirect_location


@dataclass(slots=True)
class ForwardAction:
    """Forward to one target group, or split by weight among several (weight 0 gets nothing).

    With target-group stickiness (``target_group_stickiness_config``), the chosen group is
    named in an ``AWSALBTG``/``AWSALBTGCORS`` cookie (sealed like ``AWSALB``) and later requests
    carrying it go to that group while it still has weight; the cookie is refreshed on every
    response. Requests without it (or with a forged or stale one) follow the weights.
    """

    groups: list[TargetGroupRuntime]
    weights: list[int] = field(default_factory=list)
    sticky_seconds: float = 0  # target_group_stickiness_config.duration_seconds when enabled
    _cumulative: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.weights:
            self.weights = [1] * len(self.groups)
        total = 0
        for weight in self.weights:
            total += weight
            self._cumulative.append(total)

    def choose(self) -> TargetGroupRuntime | None:
        if len(self.groups) == 1:
            return self.groups[0]
        total = self._cumulative[-1]
        if total == 0:
            return None
        pick = random.randrange(total)
        for group, bound in zip(self.groups, self._cumulative):
            if pick < bound:
                return group
        return None  # pragma: no cover - pick < total

    def choose_for(self, request: Request) -> tuple[TargetGroupRuntime | None, Headers]:
        """The group for a request, and the ``AWSALBTG`` Set-Cookie fields of its response."""
        if not self.sticky_seconds or len(self.groups) == 1:
            return self.choose(), []
        wall = time.time()
        value = lb_cookie_value(request_cookies(request.headers), TG_COOKIE)
        key = self.groups[0].sticky_key  # the process's stickiness key, shared by all groups
        bound = decode_sticky(value, wall, key) if value else None
        group = next((g for g, w in zip(self.groups, self.weights) if w and f"tg/{g.name}" == bound), None) \
            if bound else None
        if group is None:
            group = self.choose()
        if group is None:
            return None, []
        cookie = encode_sticky(f"tg/{group.name}", wall, self.sticky_seconds, key)
        return group, [(b"Set-Cookie", c.encode()) for c in lb_cookie_headers(cookie, wall, TG_COOKIE)]


@dataclass(frozen=True, slots=True)
class RedirectAction:
    config: dict  # type: ignore[type-arg]  # RedirectConfig as plain data
    status: int


@dataclass(frozen=True, slots=True)
class FixedResponseAction:
    response: Response


_REDIRECT_TOO_LONG = error_response(500, "The redirect URL is too long.")
_NO_GROUP = error_response(503, "No target group has weight.")


class _Fields:
    """A request's fields for the rules, built only if a rule iterates them (an http-header
    condition): a request from the HTTP/1.1 fast path carries a raw block, not a list."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.request.headers)


def _view(request: Request, scheme: str, listener_port: int) -> RequestView:
    target = request.target
    path, sep, rest = target.partition(b"?")
    query = rest.partition(b"#")[0] if sep else b""
    conn = request.connection
    return RequestView(request.method, path, query, request.authority, _Fields(request),
                       conn.client_ip if conn is not None else "-", scheme, listener_port)


def listener_app(router: Router, policy: ForwardingPolicy, *, scheme: str, listener_port: int) -> App:
    """Evaluate the listener's rules for each request and run the chosen action."""

    def app(request: Request, responder: Responder) -> Handler:
        view = _view(request, scheme, listener_port)
        priority, action = router.route(view)
        record = request.record
        if record is not None:
            record.priority = priority
        if isinstance(action, ForwardAction):
            if record is not None:
                record.action = "forward"
            group, cookies = action.choose_for(request)
            if group is not None:
                return Forward(request, responder, group, policy, _client(request, scheme), cookies)
            return static(lambda _r: _NO_GROUP)(request, responder)
        if isinstance(action, RedirectAction):
            location = redirect_location(action.config, view)
            if record is not None:
                record.action, record.redirect_url = "redirect", location
            if location is None:
                return static(lambda _r: _REDIRECT_TOO_LONG)(request, responder)
            page = Response(action.status, [(b"Server", SERVER), (b"Location", location)], b"")
            return static(lambda _r: page)(request, responder)
        assert isinstance(action, FixedResponseAction)
        if record is not None:
            record.action = "fixed-response"
        fixed = action.response
        return static(lambda _r: fixed)(request, responder)

    return app


def forward_app(group: TargetGroupRuntime, policy: ForwardingPolicy, *, scheme: str) -> App:
    """Forward every request to ``group`` (a listener without rules, as in the demo)."""

    def app(request: Request, responder: Responder) -> Handler:
        record = request.record
        if record is not None:
            record.priority, record.action = 0, "forward"  # the default rule
        return Forward(request, responder, group, policy, _client(request, scheme))

    return app


def _client(request: Request, scheme: str) -> ClientSide:
    conn = request.connection
    if conn is None:
        return ClientSide("-", 0, 0, scheme)
    client = conn.forwarding
    if client is None:  # once per client connection
        tls = conn.tls
        client = conn.forwarding = ClientSide(conn.client_ip, conn.client_port, conn.local_port, scheme,
                                              tls.version if tls is not None else None,
                                              tls.cipher if tls is not None else None)
    return client  # type: ignore[no-any-return]

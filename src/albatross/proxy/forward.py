"""One request forwarded to a target: the client side and the target side, streamed both ways.

A :class:`Forward` is the handler the front-end codec gets for a request whose action is
``forward``. It picks a target, takes a pooled keep-alive connection (or opens one), writes
the rewritten request head and streams the body; the target's response streams back through
the codec's responder. Backpressure follows the data: a target that reads slowly pauses the
client's request body, a client that reads slowly pauses the target connection.

Failures become ALB's status codes while the client has not seen a response head yet:
502 (refused, reset, closed early or malformed response), 503 (no registered target),
504 (no connection within the connect timeout, or no answer within the idle timeout), and
460 is what the access log will say when the client leaves first: the target request is then
abandoned by closing its connection. After the head was sent, a failure can only cut the
response short (the codec closes the HTTP/1.1 connection or resets the HTTP/2 stream).

The one retry: when a *reused* connection turns out dead before any byte of the request was
written (it was found closed when taken), a fresh connection is used instead; a request that
reached a target is never sent twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from albatross.http.exchange import Handler, Responder
from albatross.http.forwarding import (
    ClientSide,
    ForwardingPolicy,
    RequestRejected,
    target_request,
)
from albatross.http.messages import F_DATE, Headers, Request
from albatross.http1.connection import error_response
from albatross.observe.stats import GroupStats
from albatross.targets.balancing import Balancer, create_balancer
from albatross.targets.group import (
    app_cookie_headers,
    decode_app_sticky,
    decode_sticky,
    encode_app_sticky,
    encode_sticky,
    lb_cookie_headers,
    lb_cookie_value,
    new_sticky_key,
    select_candidates,
    sets_cookie,
    slow_start_weight,
    wants_same_site_none,
)
from albatross.targets.health import TargetHealth
from albatross.http1.upstream import (
    BodyReceived,
    InformationalResponse,
    ResponseEnded,
    ResponseStarted,
    TrailersReceived,
    Upgraded,
    response_headers_for_h2,
)

log = logging.getLogger("albatross.proxy")

MAX_BUFFERED_BODY = 256 * 1024  # request body held while the target connection opens


@dataclass(slots=True)
class Target:
    """One registered target: its address, connection pool, health and slow-start state."""

    host: str
    port: int
    pool: object  # albatross.server.upstream.TargetPool
    outstanding: int = 0
    health: TargetHealth | None = None  # None: health checks not configured (always routable)
    probe: object = None  # albatross.server.health.Probe, when health checks are enabled
    slow_start_seconds: float = 0
    slow_start_from: float | None = None
    errors: float = 0.0
    group: str = ""  # the target group's name
    name: str | None = None  # the host name it was registered by (beyond ALB), when not an IP
    deregistration_delay: float = 300.0  # deregistration_delay.timeout_seconds of its group
    drain_until: float = math.inf  # when draining: the end of the deregistration delay
    _sticky: str = field(default="", repr=False)

    def describe(self) -> dict[str, object]:
        """DescribeTargetHealth's TargetHealthDescription for this target, in snake_case."""
        health = self.health.describe() if self.health is not None else {"State": "unavailable"}
        target: dict[str, object] = {"id": self.name or self.host, "port": self.port}
        if self.name:
            target["address"] = self.host
        out: dict[str, object] = {"target": target,
                                  "health_check_port": str(getattr(self.probe, "port", self.port)),
                                  "target_health": {k.lower(): v for k, v in health.items()},
                                  "outstanding_requests": self.outstanding}
        return out

    @property
    def label(self) -> str:
        """``ip:port`` as ALB's logs write it."""
        return f"{self.host}:{self.port}"

    @property
    def sticky_id(self) -> str:
        """An opaque, stable id for cookies (the address is not shown to clients)."""
        if not self._sticky:
            self._sticky = hashlib.blake2s(f"{self.host}:{self.port}".encode(), digest_size=8).hexdigest()
        return self._sticky

    def weight(self, now: float) -> float:
        if not self.slow_start_seconds or self.slow_start_from is None or self.health is None:
            return 1.0
        if self.health.healthy_since != self.slow_start_from:
            return 1.0
        return slow_start_weight(self.slow_start_from, self.slow_start_seconds, now)


@dataclass(slots=True)
class TargetGroupRuntime:
    """The targets of one group and the choice among them: ALB's fail-open, then the algorithm,
    unless a stickiness cookie (``AWSALB``, or ``AWSALBAPP-n`` for application cookies) binds
    the client to a target that may still take it."""

    name: str
    targets: list[Target] = field(default_factory=list)
    balancer: Balancer = field(default_factory=lambda: create_balancer("round_robin"))
    sticky_seconds: float = 0  # stickiness.lb_cookie.duration_seconds when lb_cookie stickiness is on
    sticky_key: bytes = field(default_factory=new_sticky_key)
    app_cookie: bytes = b""  # stickiness.app_cookie.cookie_name when app_cookie stickiness is on
    app_seconds: float = 0  # stickiness.app_cookie.duration_seconds
    stats: GroupStats = field(default_factory=lambda: GroupStats(""))  # metrics (kept across reloads)

    def _candidates(self, now: float) -> list[Target]:
        if all(t.health is None for t in self.targets):
            return self.targets
        return select_candidates(self.targets, now)

    def choose(self) -> Target | None:
        if not self.targets:
            return None
        now = time.monotonic()
        return self.balancer.choose(self._candidates(now), now)

    def choose_for(self, request: Request) -> tuple[Target | None, Headers, bool]:
        """The target for a request, the Set-Cookie fields lb_cookie stickiness adds to its
        response, and whether an application-cookie binding moved (to be re-issued)."""
        if not (self.sticky_seconds or self.app_cookie) or not self.targets:
            return self.choose(), [], False
        now, wall = time.monotonic(), time.time()
        candidates = self._candidates(now)
        jar = request_cookies(request.headers)
        if self.app_cookie:
            sticky_id = decode_app_sticky(jar, wall, self.sticky_key)
        else:
            value = lb_cookie_value(jar)
            sticky_id = decode_sticky(value, wall, self.sticky_key) if value else None
        target = next((t for t in candidates if t.sticky_id == sticky_id), None) if sticky_id else None
        if target is not None and target.health is not None and not target.health.routable \
                and not getattr(candidates, "fail_open", False):
            target = None  # bound to a target that is no longer healthy: choose again, re-issue
        if target is None:
            target = self.balancer.choose(candidates, now)
        if target is None:
            return None, [], False
        if self.app_cookie:
            # Issued with the response: when the target sets its cookie, or the binding moved.
            return target, [], sticky_id is not None and sticky_id != target.sticky_id
        cookie = encode_sticky(target.sticky_id, wall, self.sticky_seconds, self.sticky_key)
        return target, [(b"Set-Cookie", c.encode()) for c in lb_cookie_headers(cookie, wall)], False

    def app_cookies(self, target: Target, request: Request, response_headers: Headers, moved: bool) -> Headers:
        """``AWSALBAPP-0..3`` for a response from ``target``: issued when the target sets the
        application cookie (or the client's binding moved to a new target), else nothing."""
        if not (moved or sets_cookie(response_headers, self.app_cookie)):
            return []
        wall = time.time()
        agent = next((v for n, v in request.headers if n.lower() == b"user-agent"), b"").decode("latin-1")
        pairs = encode_app_sticky(target.sticky_id, wall, self.app_seconds, self.sticky_key)
        return [(b"Set-Cookie", c.encode()) for c in
                app_cookie_headers(pairs, wall, same_site_none=wants_same_site_none(agent))]


def request_cookies(headers: Headers) -> dict[str, str]:
    """A request's cookies by name (the first of each name wins)."""
    jar: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, sep, val = part.strip().partition("=")
                if sep and key not in jar:
                    jar[key] = val
    return jar


class Forward(Handler):
    """Forward one request to a target of ``group``."""

    __slots__ = ("request", "responder", "group", "policy", "target", "conn", "framing", "head",
                 "pending", "pending_bytes", "request_ended", "trailers", "head_sent", "done",
                 "client_paused", "started", "tunnel", "set_cookies", "rebind")

    def __init__(self, request: Request, responder: Responder, group: TargetGroupRuntime,
                 policy: ForwardingPolicy, client: ClientSide, cookies: Headers | None = None) -> None:
        self.request = request
        self.responder = responder
        self.group = group
        self.policy = policy
        self.conn: object | None = None
        self.target: Target | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.request_ended = False
        self.trailers: Headers | None = None
        self.head_sent = False
        self.done = False
        self.client_paused = False
        self.tunnel = False
        self.set_cookies: Headers = cookies or []  # the forward action's (AWSALBTG) and the group's
        self.rebind = False
        self.started = time.monotonic()
        try:
            self.framing, self.head = target_request(request, client, policy, now=time.time())
        except RequestRejected as exc:
            self.fail(exc.status, exc.reason)
            return
        self._dispatch()

    # -- choosing a target and a connection ---------------------------------------------------

    def _dispatch(self) -> None:
        target, cookies, self.rebind = self.group.choose_for(self.request)
        if cookies:
            self.set_cookies = [*self.set_cookies, *cookies]
        if target is None:
            self.fail(503, f"target group {self.group.name} has no registered target")
            return
        self.target = target
        target.outstanding += 1
        record = self.request.record
        if record is not None:
            record.group = self.group.stats
            record.target = target.label
        conn = target.pool.take_idle()  # type: ignore[attr-defined]
        if conn is not None:
            self._attach(conn)
        else:
            target.pool.connect(self._connected)  # type: ignore[attr-defined]

    def _connected(self, conn: object | None, error: str, status: int) -> None:
        if self.done:
            if conn is not None:
                conn.release()  # type: ignore[attr-defined]  # unused: back to the pool
            return
        if conn is None:
            self.group.stats.connection_errors += 1
            self.fail(status, error)
            return
        self._attach(conn)

    def _attach(self, conn: object) -> None:
        self.conn = conn
        conn.exchange = self  # type: ignore[attr-defined]
        conn.last_activity = time.monotonic()  # type: ignore[attr-defined]
        # HTTP/2 clients need the target's fields as a list (they are re-encoded): no pass-through.
        conn.reader.expect(self.request.method, upgrade=self.framing.upgrade,  # type: ignore[attr-defined]
                           pass_through=self.request.http_version != "2")
        out = [self.head]
        for chunk in self.pending:
            out.append(self._frame(chunk))
        self.pending = []
        if self.request_ended:
            out.append(self._terminator())
        conn.write(b"".join(out))  # type: ignore[attr-defined]
        record = self.request.record
        if record is not None:
            record.t_sent = time.monotonic()
            at = self.head.rfind(b"\r\nX-Amzn-Trace-Id: ")
            if at >= 0:
                record.trace_id = self.head[at + 19:self.head.index(b"\r\n", at + 2)]
        if self.client_paused:
            conn.pause_reading()  # type: ignore[attr-defined]

    # -- request body from the client --------------------------------------------------------

    def _frame(self, data: bytes) -> bytes:
        if self.framing.kind == "chunked":
            return b"%x\r\n" % len(data) + data + b"\r\n"
        return data

    def _terminator(self) -> bytes:
        if self.framing.kind != "chunked":
            return b""
        tail = b"".join(n + b": " + v + b"\r\n" for n, v in self.trailers or ())
        return b"0\r\n" + tail + b"\r\n"

    def body(self, data: bytes) -> None:
        if self.done or not data:
            return
        if self.framing.kind == "none":  # HTTP/2 DATA on a request declared without a body
            self.upstream_failed("request body on a request without one", status=400)
            return
        if self.conn is not None:
            self.conn.write(self._frame(data))  # type: ignore[attr-defined]
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > MAX_BUFFERED_BODY:
            self.responder.pause_request_body()

    def end(self, trailers: Headers | None = None) -> None:
        self.request_ended = True
        self.trailers = trailers
        if self.conn is not None and not self.done:
            tail = self._terminator()
            if tail:
                self.conn.write(tail)  # type: ignore[attr-defined]

    # -- the response from the target ----------------------------------------------------------

    def upstream_events(self, events: list[object]) -> None:
        r = self.responder
        for event in events:
            if isinstance(event, BodyReceived):
                r.send_body(event.data)
            elif isinstance(event, ResponseStarted):
                self.head_sent = True
                record = self.request.record
                if record is not None:
                    record.target_status = event.status
                    record.t_target = time.monotonic()
                # HEAD and 304 answers keep the target's Content-Length (the representation's size).
                length = event.content_length if event.framing != "chunked" and event.status != 204 else None
                h2 = self.request.http_version == "2"
                cookies = self.set_cookies
                if self.group.app_cookie and self.target is not None:
                    cookies = [*cookies, *self.group.app_cookies(self.target, self.request, event.headers, self.rebind)]
                head_only = self.request.method == b"HEAD" or event.framing == "none"
                raw = event.raw
                if raw is not None and not h2:  # the fast path: end-to-end lines pass through as received
                    r.send_head_raw(event.status, raw.kept, has_date=raw.get(F_DATE) is not None, extra=cookies,
                                    content_length=length, head_only=head_only)
                    continue
                out = _end_to_end(response_headers_for_h2(event) if h2 else event.headers)
                if cookies:
                    out += cookies if not h2 else [(n.lower(), v) for n, v in cookies]
                r.send_head(event.status, out, content_length=length, head_only=head_only)
            elif isinstance(event, ResponseEnded):
                self._finish(None)
            elif isinstance(event, TrailersReceived):
                self._finish(event.headers)
                return
            elif isinstance(event, InformationalResponse):
                r.send_informational(event.status, event.headers)
            elif isinstance(event, Upgraded):
                self._start_tunnel(event)
                return
        if not self.done:
            r.flush()

    # -- WebSocket: after the target's 101, bytes flow both ways untouched ------------------------

    def wants_tunnel(self) -> bool:
        return self.framing.upgrade

    def _start_tunnel(self, event: Upgraded) -> None:
        self.head_sent = True
        self.tunnel = True
        conn = self.conn
        assert conn is not None
        conn.tunnel = True  # type: ignore[attr-defined]
        self.responder.send_upgrade(event.status, event.headers)
        self.responder.send_raw(event.rest)
        if self.pending:  # client bytes that arrived before the 101
            conn.write(b"".join(self.pending))  # type: ignore[attr-defined]
            self.pending = []

    def tunnel_data(self, data: bytes) -> None:
        if self.done:
            return
        if self.tunnel and self.conn is not None:
            self.conn.write(data)  # type: ignore[attr-defined]
        else:
            self.pending.append(data)

    def tunnel_from_target(self, data: bytes) -> None:
        self.responder.send_raw(data)

    def tunnel_closed(self) -> None:
        """The target closed its side of the tunnel: close the client's too."""
        if not self.done:
            self._close_out()
            self.responder.abort()

    def _finish(self, trailers: Headers | None) -> None:
        if self.done:
            return
        # A target that answered before the request body ended cannot take another request.
        self._close_out(reuse=self.request_ended)
        self.responder.end(trailers)

    def upstream_failed(self, reason: str, *, status: int) -> None:
        if self.done:
            return
        self.conn = None
        if self.head_sent:
            self._log(reason, "response cut short")
            self._close_out()
            self.responder.abort()
        else:
            self.fail(status, reason)

    def upstream_writable(self, writable: bool) -> None:
        if writable:
            self.responder.resume_request_body()
        else:
            self.responder.pause_request_body()

    # -- the client ----------------------------------------------------------------------------

    def client_gone(self) -> None:
        """460 in ALB's terms: the client left before the response was complete."""
        if not self.done:
            self._close_out()  # abandon the target request: its connection is closed
        if self.request.record is not None:
            self.request.record.client_gone()

    def pause(self) -> None:
        self.client_paused = True
        if self.conn is not None:
            self.conn.pause_reading()  # type: ignore[attr-defined]

    def resume(self) -> None:
        self.client_paused = False
        if self.conn is not None:
            self.conn.resume_reading()  # type: ignore[attr-defined]

    # -- Albatross's own answers ---------------------------------------------------------------

    def _log(self, reason: str, outcome: str) -> None:
        conn = self.request.connection
        log.info("%s %s %s from %s: %s", outcome, self.request.method.decode("latin-1"),
                 self.request.target.decode("latin-1")[:200], conn.peer if conn else "-", reason)

    def fail(self, status: int, reason: str) -> None:
        """Answer with ALB's own status (no response head was sent yet)."""
        self._log(reason, str(status))
        self._close_out()
        page = error_response(status, _PUBLIC_REASONS.get(status, ""))
        r = self.responder
        r.send_head(status, page.headers, content_length=len(page.body), head_only=self.request.method == b"HEAD")
        if self.request.method != b"HEAD":
            r.send_body(page.body)
        r.end()

    def _close_out(self, *, reuse: bool = False) -> None:
        """The exchange is over: let go of the target and of the connection (pooled or closed)."""
        self.done = True
        self._release_target()
        conn, self.conn = self.conn, None
        if conn is not None:
            if reuse:
                conn.release()  # type: ignore[attr-defined]
            else:
                conn.close()  # type: ignore[attr-defined]

    def _release_target(self) -> None:
        if self.target is not None:
            self.target.outstanding -= 1
            self.target = None


_PUBLIC_REASONS = {
    400: "The request could not be understood.",
    463: "Too many addresses in X-Forwarded-For.",
    501: "Transfer-Encoding not implemented.",
    502: "The target did not give a valid response.",
    503: "No target is available to serve this request.",
    504: "The target did not answer in time.",
}

_HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
                         b"trailer", b"upgrade", b"content-length", b"http2-settings"))


def _end_to_end(headers: Headers) -> Headers:
    """The target's response fields without framing and hop-by-hop ones (names kept as received);
    the codec adds its own framing and connection fields."""
    listed = frozenset(t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b","))
    return [(n, v) for n, v in headers if (low := n.lower()) not in _HOP_BY_HOP and low not in listed]

"""Per-request and per-connection records: metrics always, ALB's log lines when configured.

A :class:`RequestRecord` rides on each request (``request.record``). The codec reports the
response head and bytes, the listener's app the matched rule and action, the forward handler
the target group, the target and its timings; when the response is complete (or the client
left) :meth:`RequestRecord.finish` updates the counters and, if access logging is on, queues
one line in ALB's access-log format (:func:`access_log_line`).

ALB's field list (alb-reference.md §6.2, AWS's access-log documentation) is followed field by
field. Decisions where ALB's value cannot exist here or is not documented:

* ``elb`` is ``app/<load_balancer.name>/<16 hex>`` and ``target_group_arn`` is
  ``arn:albatross:elasticloadbalancing:local:000000000000:targetgroup/<name>/<16 hex>``; the
  hex is derived from the name, so it is stable across restarts and reloads.
* ``chosen_cert_arn`` is ``arn:albatross:acm:local:000000000000:certificate/<16 hex>`` derived
  from the certificate file chosen for the connection's SNI (``session-reused`` on resumption).
* ``received_bytes``/``sent_bytes`` count the request and response as HTTP/1.1 text (head and
  body) for HTTP/1.1 clients, which is what was on the wire inside TLS; for HTTP/2 the header
  block is counted as if it were HTTP/1.1 text (HPACK sizes are not visible per stream).
* ``trace_id`` is the ``X-Amzn-Trace-Id`` sent to the target; requests answered without a
  target (redirect, fixed response, errors) get a fresh ``Root=`` as ALB does.
* Quoted fields write ``"``, ``\\`` and bytes outside visible ASCII as ``\\xHH`` so that every
  line stays parseable by the usual (Athena) regular expression.
* ``classification``/``classification_reason`` are ``-``: requests ALB would classify
  ``Ambiguous`` or ``Severe`` are refused (400) rather than forwarded (docs/forwarding.md).
* ``conn_trace_id`` is ``TID_`` and 32 hex digits, one per client connection, shared with the
  connection log.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timezone

from albatross.http.forwarding import TraceIds
from albatross.http.messages import F_USER_AGENT, Request

_TRACE_IDS = TraceIds()
_QUOTED_SAFE = {c for c in range(0x20, 0x7F)} - {ord('"'), ord("\\")}


def stable_hex(name: str) -> str:
    return hashlib.blake2s(name.encode(), digest_size=8).hexdigest()


def elb_id(name: str) -> str:
    return f"app/{name}/{stable_hex('lb/' + name)}"


def target_group_arn(name: str) -> str:
    return f"arn:albatross:elasticloadbalancing:local:000000000000:targetgroup/{name}/{stable_hex('tg/' + name)}"


def certificate_arn(path: str) -> str:
    return f"arn:albatross:acm:local:000000000000:certificate/{stable_hex('cert/' + os.path.abspath(path))}"


def new_conn_trace_id() -> str:
    return "TID_" + os.urandom(16).hex()


def iso_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quoted(value: str | bytes | None, limit: int = 8192) -> str:
    """A double-quoted log field (``"-"`` when absent)."""
    if value is None or value == "" or value == b"":
        return '"-"'
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    raw = raw[:limit]
    if all(b in _QUOTED_SAFE for b in raw):
        return '"' + raw.decode("ascii") + '"'
    return '"' + "".join(chr(b) if b in _QUOTED_SAFE else f"\\x{b:02x}" for b in raw) + '"'


def token(value: str | None) -> str:
    """An unquoted field from client input (SNI): spaces, quotes and non-visible bytes as ``\\xHH``."""
    if not value:
        return "-"
    return quoted(value)[1:-1].replace(" ", "\\x20")


def _seconds(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "-1"
    return f"{max(end - start, 0.0):.3f}"


class RequestRecord:
    """What one request did, filled in as it goes."""

    __slots__ = ("listener", "request", "created", "t0", "status", "sent", "received", "target", "target_status",
                 "group", "priority", "action", "redirect_url", "trace_id", "t_sent", "t_target", "t_client",
                 "done", "upgraded", "error_reason")

    def __init__(self, listener: object, request: Request) -> None:
        self.listener = listener  # albatross.observe.observer.ListenerObserver
        self.request = request
        self.created = time.time()
        self.t0 = time.monotonic()
        self.status = 0
        self.sent = 0
        self.received = 0
        self.target: str | None = None  # "ip:port"
        self.target_status: int | None = None
        self.group: object = None  # albatross.observe.stats.GroupStats of the chosen group
        self.priority: int | None = None
        self.action: str | None = None
        self.redirect_url: bytes | None = None
        self.trace_id: bytes | None = None
        self.t_sent: float | None = None  # request head written to the target
        self.t_target: float | None = None  # target's response head arrived
        self.t_client: float | None = None  # response head handed to the client connection
        self.done = False
        self.upgraded = False
        self.error_reason: str | None = None

    def response_head(self, status: int, size: int) -> None:
        self.status = status
        self.sent += size
        self.t_client = time.monotonic()
        if status == 101:
            self.upgraded = True

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.listener.finished(self)  # type: ignore[attr-defined]

    def client_gone(self) -> None:
        """The client left before the response was complete: ALB's 460 (if no head went out)."""
        if not self.done:
            if not self.status:
                self.status = 460
            self.finish()


def request_head_size(request: Request) -> int:
    """The request head's size as HTTP/1.1 text."""
    size = len(request.method) + len(request.target) + 12  # "M T HTTP/1.1\r\n"
    raw = request.raw
    if raw is not None:  # a canonical block: each line is exactly name + ": " + value + CRLF
        return size + len(raw.block) + 2
    for name, value in request.headers:
        size += len(name) + len(value) + 4
    return size + 2


def access_log_line(rec: RequestRecord, elb: str, conn_trace_id: str, now: float) -> str:
    request = rec.request
    conn = request.connection
    tls = getattr(conn, "tls", None)
    listener = rec.listener
    scheme = "https" if tls is not None else "http"
    if rec.upgraded:
        kind = "wss" if tls is not None else "ws"
    elif request.http_version == "2":
        kind = "h2"
    else:
        kind = scheme
    client = f"{conn.client_ip}:{conn.client_port}" if conn is not None else "-:0"
    host = (request.authority or b"-").decode("latin-1")
    if host.startswith("["):
        host = host.split("]")[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    version = "HTTP/2.0" if request.http_version == "2" else f"HTTP/{request.http_version}"
    if request.method:
        url = f"{request.method.decode('latin-1')} {scheme}://{host}:{listener.port}{request.target.decode('latin-1')} {version}"  # type: ignore[attr-defined]
    else:  # rejected before a request line could be read
        url = "- - -"
    raw = request.raw
    if raw is not None:
        agent = raw.get(F_USER_AGENT)
    else:
        agent = next((v for n, v in request.headers if n.lower() == b"user-agent"), None)
    dispatched = rec.target_status is not None
    group = rec.group
    trace = rec.trace_id or b"Root=" + _TRACE_IDS(now)
    if tls is not None:
        cipher, protocol = tls.cipher, tls.version
        domain = tls.server_name
        cert = "session-reused" if tls.resumed else (listener.certificate_arn(tls.certificate) or "-")  # type: ignore[attr-defined]
    else:
        cipher = protocol = "-"
        domain = cert = None
    target = rec.target or "-"
    target_status = str(rec.target_status) if dispatched else "-"
    fields = [
        kind,
        iso_time(now),
        elb,
        client,
        target,
        _seconds(rec.t0, rec.t_sent) if dispatched else "-1",
        _seconds(rec.t_sent, rec.t_target) if dispatched else "-1",
        _seconds(rec.t_target, rec.t_client) if dispatched else "-1",
        str(rec.status or "-"),
        target_status,
        str(rec.received),
        str(rec.sent),
        quoted(url),
        quoted(agent),
        cipher,
        protocol,
        target_group_arn(group.name) if group is not None else "-",  # type: ignore[attr-defined]
        quoted(trace),
        quoted(domain),
        quoted(cert) if tls is not None else '"-"',
        str(rec.priority) if rec.priority is not None else "-",
        iso_time(rec.created),
        quoted(rec.action),
        quoted(rec.redirect_url),
        quoted(rec.error_reason),
        quoted(rec.target),
        quoted(target_status if dispatched else None),
        '"-"',
        '"-"',
        conn_trace_id,
        '"-"',
        '"-"',
        '"-"',
    ]
    return " ".join(fields) + "\n"


def connection_log_line(*, now: float, client_ip: str, client_port: int, listener_port: int, protocol: str | None,
                        cipher: str | None, latency: float, verify_status: str, conn_trace_id: str,
                        server_name: str | None, application: str | None, negotiated_by: str | None,
                        resumed: str | None) -> str:
    """ALB's connection-log fields in ALB's order (no client certificates: ``-``), then, beyond
    ALB, the SNI name, the application protocol, how it was negotiated (alpn|npn) and resumption."""
    fields = [
        iso_time(now), client_ip, str(client_port), str(listener_port), protocol or "-", cipher or "-",
        f"{latency:.3f}", '"-"', "-", "-", verify_status, conn_trace_id, "-",
        token(server_name), application or "-", negotiated_by or "-", resumed or "-",
    ]
    return " ".join(fields) + "\n"

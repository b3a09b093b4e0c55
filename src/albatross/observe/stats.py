"""Counters for metrics, kept as plain attributes on the request path.

Incrementing an attribute costs tens of nanoseconds; the Prometheus families are only built
when ``/metrics`` is scraped (:mod:`albatross.observe.metrics`). Statistics live as long as
the process: a listener's survive a reload that keeps its address and port, a target group's
survive a reload that keeps its name.
"""

from __future__ import annotations

import bisect
from collections import Counter

# TargetResponseTime histogram bounds, seconds.
RESPONSE_TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ListenerStats:
    """One listener (address and port): requests, ALB's own responses, connections, TLS."""

    __slots__ = ("scheme", "host", "port", "requests", "responses", "requests_by_group", "elb_codes", "fixed_responses", "redirects",
                 "redirect_too_long", "processed_bytes", "new_connections", "rejected_connections",
                 "tls_errors", "handshakes", "alpn", "npn", "tls_versions", "rule_evaluations")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.requests = 0  # RequestCount: requests for which a target was chosen
        self.responses = 0  # every request answered (or abandoned by its client)
        self.requests_by_group: Counter[str] = Counter()
        self.elb_codes: Counter[int] = Counter()  # responses Albatross made itself, by status
        self.fixed_responses = 0
        self.redirects = 0
        self.redirect_too_long = 0
        self.processed_bytes = 0
        self.new_connections = 0
        self.rejected_connections = 0
        self.tls_errors = 0  # ClientTLSNegotiationErrorCount
        self.handshakes: Counter[str] = Counter()  # "full", "ticket", "session_id"
        self.alpn: Counter[str] = Counter()  # negotiated by ALPN, "none" when not
        self.npn: Counter[str] = Counter()  # negotiated by NPN
        self.tls_versions: Counter[str] = Counter()
        self.rule_evaluations = 0

    @property
    def label(self) -> str:
        return f"{self.scheme}:{self.port}"


class GroupStats:
    """One target group: what its targets answered and how fast."""

    __slots__ = ("name", "requests", "target_codes", "connection_errors", "fail_open_requests", "non_sticky",
                 "buckets", "response_time_sum", "response_time_count")

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.target_codes: Counter[int] = Counter()  # by class: 2, 3, 4, 5
        self.connection_errors = 0  # TargetConnectionErrorCount
        self.fail_open_requests = 0  # UnhealthyRoutingRequestCount
        self.non_sticky = 0  # NonStickyRequestCount
        self.buckets = [0] * (len(RESPONSE_TIME_BUCKETS) + 1)
        self.response_time_sum = 0.0
        self.response_time_count = 0

    def response_time(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(RESPONSE_TIME_BUCKETS, seconds)] += 1
        self.response_time_sum += seconds
        self.response_time_count += 1

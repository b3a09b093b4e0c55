"""Prometheus metrics named after ALB's CloudWatch metrics, built when ``/metrics`` is scraped.

The request path only increments plain counters (:mod:`albatross.observe.stats`); this
collector turns them into metric families with ``prometheus_client`` at scrape time. Names
are ALB's (``RequestCount``, ``HTTPCode_ELB_5XX_Count``, ``TargetResponseTime`` ...), with the
suffixes Prometheus adds (``_total`` for counters; ``_bucket``/``_sum``/``_count`` for the
histogram). ALB's dimensions become labels: ``load_balancer`` (``app/<name>/<id>``),
``listener`` (``https:8443``) and ``target_group`` (the group's name).

Beyond ALB: ``TLSHandshakeCount`` (``resumption`` = ``full``, ``ticket`` or ``session_id``),
``TLSProtocolVersionCount``, ``ApplicationProtocolCount`` (``negotiated_by`` = ``alpn`` or
``npn``), ``SessionTicketCount`` (the ticket-key ring: ``issued``, ``resumed``,
``unknown_key``), and ``LogLinesDroppedCount``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from albatross.observe.stats import RESPONSE_TIME_BUCKETS

if TYPE_CHECKING:
    from albatross.server.lifecycle import Server

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class ServerCollector:
    """Reads a running :class:`~albatross.server.lifecycle.Server`'s statistics."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        observer = server.observer
        lb = observer.elb

        def counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=["load_balancer", *labels])

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=["load_balancer", *labels])

        active = {(listener.host, listener.port): len(listener.connections) for listener in server._all_listeners()}
        requests = counter("RequestCount", "Requests for which a target was chosen.", ["listener", "target_group"])
        elb = {cls: counter(f"HTTPCode_ELB_{cls}XX_Count", f"{cls}XX responses made by the load balancer itself.",
                            ["listener"]) for cls in (3, 4, 5)}
        elb_codes = {code: counter(f"HTTPCode_ELB_{code}_Count", f"{code} responses made by the load balancer.",
                                   ["listener"]) for code in (500, 502, 503, 504)}
        fixed = counter("HTTP_Fixed_Response_Count", "Fixed-response actions run.", ["listener"])
        redirects = counter("HTTP_Redirect_Count", "Redirect actions run.", ["listener"])
        too_long = counter("HTTP_Redirect_Url_Limit_Exceeded_Count", "Redirects not made: URL over 8 KiB.",
                           ["listener"])
        processed = counter("ProcessedBytes", "Bytes received from and sent to clients.", ["listener"])
        new = counter("NewConnectionCount", "Client connections accepted.", ["listener"])
        rejected = counter("RejectedConnectionCount", "Client connections refused (connection limit).", ["listener"])
        tls_errors = counter("ClientTLSNegotiationErrorCount", "TLS handshakes that did not complete.", ["listener"])
        connections = gauge("ActiveConnectionCount", "Open client connections.", ["listener"])
        handshakes = counter("TLSHandshakeCount", "Completed TLS handshakes (beyond ALB).", ["listener", "resumption"])
        versions = counter("TLSProtocolVersionCount", "Completed TLS handshakes by version (beyond ALB).",
                           ["listener", "version"])
        protocols = counter("ApplicationProtocolCount", "Application protocol negotiated by ALPN or NPN (beyond ALB).",
                            ["listener", "negotiated_by", "protocol"])
        for stats in observer.listeners.values():
            if (stats.host, stats.port) not in active:
                continue  # a listener removed by a reload (its series end with it)
            name = stats.label
            for group, n in stats.requests_by_group.items():
                requests.add_metric([lb, name, group], n)
            by_class = {3: 0, 4: 0, 5: 0}
            for code, n in stats.elb_codes.items():
                if code // 100 in by_class:
                    by_class[code // 100] += n
            for cls, family in elb.items():
                family.add_metric([lb, name], by_class[cls])
            for code, family in elb_codes.items():
                family.add_metric([lb, name], stats.elb_codes.get(code, 0))
            fixed.add_metric([lb, name], stats.fixed_responses)
            redirects.add_metric([lb, name], stats.redirects)
            too_long.add_metric([lb, name], stats.redirect_too_long)
            processed.add_metric([lb, name], stats.processed_bytes)
            new.add_metric([lb, name], stats.new_connections)
            rejected.add_metric([lb, name], stats.rejected_connections)
            connections.add_metric([lb, name], active.get((stats.host, stats.port), 0))
            if stats.scheme == "https":
                tls_errors.add_metric([lb, name], stats.tls_errors)
                for kind in ("full", "ticket", "session_id"):
                    handshakes.add_metric([lb, name, kind], stats.handshakes.get(kind, 0))
                for version, n in sorted(stats.tls_versions.items()):
                    versions.add_metric([lb, name, version], n)
                for by, table in (("alpn", stats.alpn), ("npn", stats.npn)):
                    for protocol, n in sorted(table.items()):
                        protocols.add_metric([lb, name, by, protocol], n)
        yield from (requests, *elb.values(), *elb_codes.values(), fixed, redirects, too_long, processed, new,
                    rejected, tls_errors, connections, handshakes, versions, protocols)
        yield from self._groups(lb)
        yield from self._tls_and_logs(lb)

    def _groups(self, lb: str) -> Iterator[Metric]:
        server = self.server
        healthy = GaugeMetricFamily("HealthyHostCount", "Targets taking traffic (healthy or unchecked).",
                                    labels=["load_balancer", "target_group"])
        unhealthy = GaugeMetricFamily("UnHealthyHostCount", "Registered targets failing their health checks.",
                                      labels=["load_balancer", "target_group"])
        codes = {cls: CounterMetricFamily(f"HTTPCode_Target_{cls}XX_Count", f"{cls}XX responses from targets.",
                                          labels=["load_balancer", "target_group"]) for cls in (2, 3, 4, 5)}
        errors = CounterMetricFamily("TargetConnectionErrorCount", "Connections to targets that could not be made.",
                                     labels=["load_balancer", "target_group"])
        times = HistogramMetricFamily("TargetResponseTime",
                                      "Seconds from the request reaching the target to its response head.",
                                      labels=["load_balancer", "target_group"])
        for name, group in server.plan.groups.items():
            states = [t.health.state if t.health is not None else "unavailable" for t in group.targets]
            healthy.add_metric([lb, name], sum(s in ("healthy", "unavailable") for s in states))
            unhealthy.add_metric([lb, name], sum(s == "unhealthy" for s in states))
            stats = group.stats
            for cls, family in codes.items():
                family.add_metric([lb, name], stats.target_codes.get(cls, 0))
            errors.add_metric([lb, name], stats.connection_errors)
            cumulative, buckets = 0, []
            for bound, n in zip((*RESPONSE_TIME_BUCKETS, float("inf")), stats.buckets):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            times.add_metric([lb, name], buckets, stats.response_time_sum)
        yield from (healthy, unhealthy, *codes.values(), errors, times)

    def _tls_and_logs(self, lb: str) -> Iterator[Metric]:
        server = self.server
        tickets = CounterMetricFamily("SessionTicketCount", "Session tickets by outcome (beyond ALB).",
                                      labels=["load_balancer", "outcome"])
        ring = server.plan.ring
        if ring is not None:
            stats = ring.stats
            tickets.add_metric([lb, "issued"], stats.encrypted)
            tickets.add_metric([lb, "resumed"], stats.decrypted)
            tickets.add_metric([lb, "unknown_key"], stats.unknown)
        dropped = CounterMetricFamily("LogLinesDroppedCount", "Log lines dropped: the disk did not keep up (beyond ALB).",
                                      labels=["load_balancer", "log"])
        for kind, f in (("access", server.observer.access_log), ("connection", server.observer.connection_log)):
            if f is not None:
                dropped.add_metric([lb, kind], f.dropped)
        yield from (tickets, dropped)


def render(server: Server) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))  # type: ignore[arg-type]
    return generate_latest(registry)

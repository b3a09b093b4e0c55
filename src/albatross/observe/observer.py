"""The process's observability state: statistics, the access log and the connection log.

One :class:`Observer` lives as long as the server (reloads included); each listening socket
gets a :class:`ListenerObserver` that the listener, its connections and the request records
report to. Nothing here does I/O on the event loop: log lines go to :class:`LogFile` threads.
"""

from __future__ import annotations

import logging
import time

from albatross.observe.logfile import LogFile
from albatross.observe.record import (
    RequestRecord,
    access_log_line,
    certificate_arn,
    connection_log_line,
    elb_id,
    new_conn_trace_id,
)
from albatross.observe.stats import GroupStats, ListenerStats

log = logging.getLogger("albatross.logs")


class Observer:
    def __init__(self, name: str = "albatross") -> None:
        self.elb = elb_id(name)
        self.listeners: dict[tuple[str, int], ListenerStats] = {}
        self.groups: dict[str, GroupStats] = {}
        self.access_log: LogFile | None = None
        self.connection_log: LogFile | None = None
        self.started = time.time()

    # -- configuration (start and reload) --------------------------------------------------------

    def configure(self, *, name: str, access_log: str | None, connection_log: str | None) -> None:
        """Apply a plan's logging settings: open, move or close the log files."""
        self.elb = elb_id(name)
        self.access_log = self._switch(self.access_log, access_log, "access")
        self.connection_log = self._switch(self.connection_log, connection_log, "connection")

    @staticmethod
    def _switch(current: LogFile | None, path: str | None, what: str) -> LogFile | None:
        if current is not None and current.path == path:
            return current
        fresh = LogFile(path) if path else None  # raises OSError: the caller reports it
        if current is not None:
            current.close(timeout=0)  # its thread writes what is queued, then closes; the loop does not wait
        if fresh is not None:
            log.info("%s log: %s", what, path)
        return fresh

    def check_paths(self, access_log: str | None, connection_log: str | None) -> None:
        """Raise OSError now if a new log path cannot be opened (before a reload commits)."""
        for current, path in ((self.access_log, access_log), (self.connection_log, connection_log)):
            if path and (current is None or current.path != path):
                LogFile.probe(path)

    def reopen(self) -> None:
        """SIGUSR1: reopen the log files (after an external rotation)."""
        for f in (self.access_log, self.connection_log):
            if f is not None:
                f.reopen()

    def close(self) -> None:
        for f in (self.access_log, self.connection_log):
            if f is not None:
                f.close()
        self.access_log = self.connection_log = None

    # -- statistics ------------------------------------------------------------------------------

    def group(self, name: str) -> GroupStats:
        stats = self.groups.get(name)
        if stats is None:
            stats = self.groups[name] = GroupStats(name)
        return stats

    def listener(self, scheme: str, host: str, port: int) -> ListenerObserver:
        stats = self.listeners.get((host, port))
        if stats is None or stats.scheme != scheme:
            stats = self.listeners[(host, port)] = ListenerStats(scheme, host, port)
        return ListenerObserver(self, stats)


class ListenerObserver:
    """What one listener reports: connections, handshakes, finished requests."""

    __slots__ = ("observer", "stats", "port", "tls")

    def __init__(self, observer: Observer, stats: ListenerStats) -> None:
        self.observer = observer
        self.stats = stats
        self.port = stats.port
        self.tls: object = None  # the listener's current ServerContext (certificate ARNs)

    def certificate_arn(self, path: str | None) -> str | None:
        return certificate_arn(path) if path else None

    def finished(self, rec: RequestRecord) -> None:
        stats = self.stats
        stats.responses += 1
        stats.processed_bytes += rec.sent + rec.received
        group = rec.group
        if group is not None:
            stats.requests += 1
            stats.requests_by_group[group.name] += 1  # type: ignore[attr-defined]
            group.requests += 1  # type: ignore[attr-defined]
            if rec.target_status is not None:
                group.target_codes[rec.target_status // 100] += 1  # type: ignore[attr-defined]
                if rec.t_sent is not None and rec.t_target is not None:
                    group.response_time(rec.t_target - rec.t_sent)  # type: ignore[attr-defined]
        if rec.target_status is None and rec.status:
            stats.elb_codes[rec.status] += 1
        if rec.action == "fixed-response":
            stats.fixed_responses += 1
        elif rec.action == "redirect":
            if rec.redirect_url is None:
                stats.redirect_too_long += 1
            else:
                stats.redirects += 1
        access = self.observer.access_log
        if access is not None:
            conn = rec.request.connection
            access.write(access_log_line(rec, self.observer.elb, _trace_id(conn), time.time()))

    def new_connection(self) -> None:
        self.stats.new_connections += 1

    def handshake(self, conn: object, info: object, started: float, resumed_by: str | None) -> None:
        """A completed TLS handshake: counters, and the connection-log line."""
        stats = self.stats
        stats.handshakes[resumed_by or "full"] += 1
        stats.tls_versions[info.version] += 1  # type: ignore[attr-defined]
        if info.alpn:  # type: ignore[attr-defined]
            stats.alpn[info.alpn] += 1  # type: ignore[attr-defined]
        elif info.npn:  # type: ignore[attr-defined]
            stats.npn[info.npn] += 1  # type: ignore[attr-defined]
        else:
            stats.alpn["none"] += 1
        out = self.observer.connection_log
        if out is not None:
            negotiated = "alpn" if info.alpn else "npn" if info.npn else None  # type: ignore[attr-defined]
            out.write(connection_log_line(
                now=time.time(), client_ip=conn.client_ip, client_port=conn.client_port,  # type: ignore[attr-defined]
                listener_port=self.port, protocol=info.version, cipher=info.cipher,  # type: ignore[attr-defined]
                latency=time.monotonic() - started, verify_status="Success", conn_trace_id=_trace_id(conn),
                server_name=info.server_name, application=info.alpn or info.npn,  # type: ignore[attr-defined]
                negotiated_by=negotiated, resumed=resumed_by))

    def handshake_failed(self, conn: object, reason: str, started: float) -> None:
        self.stats.tls_errors += 1
        out = self.observer.connection_log
        if out is not None:
            word = "".join(part.capitalize() for part in reason.replace("-", " ").replace("_", " ").split()[:8])
            out.write(connection_log_line(
                now=time.time(), client_ip=conn.client_ip, client_port=conn.client_port,  # type: ignore[attr-defined]
                listener_port=self.port, protocol=None, cipher=None, latency=time.monotonic() - started,
                verify_status=f"Failed:{word or 'HandshakeFailure'}", conn_trace_id=_trace_id(conn),
                server_name=None, application=None, negotiated_by=None, resumed=None))


def _trace_id(conn: object) -> str:
    """The connection's ``conn_trace_id``, made on first use."""
    if conn is None:
        return "-"
    tid = conn.trace_id  # type: ignore[attr-defined]
    if tid is None:
        tid = conn.trace_id = new_conn_trace_id()  # type: ignore[attr-defined]
    return tid  # type: ignore[no-any-return]

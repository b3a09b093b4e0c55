"""Connections to targets: keep-alive HTTP/1.1 over TCP, pooled per target.

A :class:`TargetPool` keeps idle connections to one target (``host:port``) and opens new
ones. Taking an idle connection is synchronous (no task, no await); only opening a new one
runs a small task, bounded by the connect timeout (ALB: 10 s, then 504).

Idle connections expire after ``idle_expiry`` seconds, which must stay below the target's own
keep-alive timeout: a target that closes an idle connection just as the balancer reuses it is
the classic source of spurious 502s. A connection that the target closed while idle is never
handed out. The one retry rule lives in the proxy: a request is retried on a fresh connection
only when a reused connection failed before any byte of the request was written.

Each :class:`UpstreamConnection` serves one exchange at a time and reports to it through the
:class:`Exchange` protocol below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from albatross.http1.upstream import ResponseReader, UpstreamProtocolError

log = logging.getLogger("albatross.upstream")

CONNECT_TIMEOUT = 10.0
IDLE_EXPIRY = 50.0  # below the common 60 s keep-alive of targets (nginx 75 s, Node 5 s: configurable)
MAX_IDLE = 256
HIGH_WATER = 256 * 1024


class Exchange(Protocol):
    """What an upstream connection reports to the request it carries."""

    def upstream_events(self, events: list[object]) -> None: ...
    def upstream_failed(self, reason: str, *, status: int) -> None: ...
    def upstream_writable(self, writable: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = ("pool", "transport", "reader", "exchange", "last_activity", "closed", "requests", "tunnel")

    def __init__(self, pool: TargetPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader()
        self.exchange: Exchange | None = None
        self.last_activity = time.monotonic()
        self.closed = False
        self.requests = 0
        self.tunnel = False  # after a 101: raw bytes to and from the exchange

    # -- asyncio ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=HIGH_WATER)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        exchange = self.exchange
        if exchange is None:  # bytes from an idle connection: the target broke the protocol
            log.info("target %s sent data on an idle connection; closing it", self.pool.label)
            self.close()
            return
        if self.tunnel:
            exchange.tunnel_from_target(data)  # type: ignore[attr-defined]
            return
        try:
            events = self.reader.receive_data(data)
        except UpstreamProtocolError as exc:
            self.close()
            exchange.upstream_failed(f"malformed response from target: {exc}", status=502)
            return
        if events:
            exchange.upstream_events(events)

    def eof_received(self) -> bool:
        exchange = self.exchange
        if exchange is not None and self.tunnel:
            self.exchange = None
            exchange.tunnel_closed()  # type: ignore[attr-defined]
            return False
        if exchange is not None:
            try:
                events = self.reader.end_of_input()
            except UpstreamProtocolError as exc:
                self.close()
                exchange.upstream_failed(f"target closed the connection: {exc}", status=502)
                return False
            if events:
                exchange.upstream_events(events)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            why = f"target connection lost: {exc}" if exc else "target closed the connection"
            exchange.upstream_failed(why, status=502)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_writable(False)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_writable(True)

    # -- used by the exchange ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.last_activity = time.monotonic()  # traffic either way counts against the idle timeout
            self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        """Close now (a failed or abandoned exchange): the exchange is not told again."""
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def release(self) -> None:
        """The exchange is done with a connection that may carry another request."""
        self.exchange = None
        self.requests += 1
        if self.closed or not self.reader.reusable:
            self.close()
            return
        self.pool.put_idle(self)


class TargetPool:
    """Keep-alive connections to one target."""

    def __init__(self, host: str, port: int, *, idle_expiry: float = IDLE_EXPIRY,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.idle_expiry = idle_expiry
        self.connect_timeout = connect_timeout
        self.idle: deque[tuple[float, UpstreamConnection]] = deque()
        self.busy: set[UpstreamConnection] = set()
        self.connecting = 0
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def take_idle(self) -> UpstreamConnection | None:
        """The most recently used live idle connection, if any (LIFO keeps few connections warm)."""
        while self.idle:
            _, conn = self.idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                self.busy.add(conn)
                return conn
        return None

    def connect(self, done: Callable[[UpstreamConnection | None, str, int], None]) -> None:
        """Open a new connection; ``done(conn, error, status)`` is called exactly once."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._connect(done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, done: Callable[[UpstreamConnection | None, str, int], None]) -> None:
        loop = asyncio.get_running_loop()
        self.connecting += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
                self.connect_timeout,
            )
        except TimeoutError:
            done(None, f"no connection to target {self.label} within {self.connect_timeout:.0f} s", 504)
        except OSError as exc:
            done(None, f"cannot connect to target {self.label}: {exc.strerror or exc}", 502)
        except asyncio.CancelledError:  # the pool closed (deregistration ended, or a stop)
            done(None, f"target {self.label} deregistered while connecting", 502)
            raise
        else:
            self.busy.add(conn)
            done(conn, "", 0)
        finally:
            self.connecting -= 1

    def put_idle(self, conn: UpstreamConnection) -> None:
        self.busy.discard(conn)
        if len(self.idle) >= MAX_IDLE or self.closed:
            conn.close()
            return
        self.idle.append((time.monotonic(), conn))

    def forget(self, conn: UpstreamConnection) -> None:
        self.busy.discard(conn)

    def sweep(self, now: float, idle_timeout: float) -> None:
        """Expire idle connections; time out exchanges whose target sent nothing for idle_timeout."""
        while self.idle and now - self.idle[0][0] > self.idle_expiry:
            _, conn = self.idle.popleft()
            conn.close()
        for conn in list(self.busy):
            if now - conn.last_activity > idle_timeout and conn.exchange is not None:
                exchange = conn.exchange
                conn.close()
                exchange.upstream_failed(f"target {self.label} sent nothing for {idle_timeout:.0f} s", status=504)

    def close(self, *, abort_busy: bool = False) -> None:
        """Close the idle connections (and stop connecting); with ``abort_busy``, also cut the
        exchanges in progress (a deregistration delay that ran out)."""
        self.closed = True
        for _, conn in self.idle:
            conn.close()
        self.idle.clear()
        for task in self._tasks:
            task.cancel()
        if abort_busy:
            for conn in list(self.busy):
                exchange = conn.exchange
                conn.close()
                if exchange is not None:
                    exchange.upstream_failed(f"target {self.label} deregistered", status=502)

"""Start listeners, tick once a second, stop gracefully on SIGTERM/SIGINT.

The tick does the periodic work that must stay off the request path: timeout sweeps,
reloading ticket keys and OCSP staples that changed on disk (and rotating in-memory ticket
keys). A stop closes the listening sockets at once, lets open connections finish for up to
``grace_seconds`` and then aborts what is left.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from albatross.server.health import HealthChecker
from albatross.server.listener import Listener
from albatross.server.upstream import TargetPool

log = logging.getLogger("albatross")


@dataclass(frozen=True, slots=True)
class Binding:
    listener: Listener
    host: str
    port: int
    scheme: str


class Server:
    def __init__(self, bindings: list[Binding], *, pools: Sequence[TargetPool] = (), idle_timeout: float = 60.0,
                 grace_seconds: float = 10.0, targets: Sequence[object] = ()) -> None:
        self.bindings = bindings
        self.pools = pools
        self.health = HealthChecker(targets)
        self.idle_timeout = idle_timeout
        self.grace_seconds = grace_seconds
        self._stop = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for b in self.bindings:
            server = await loop.create_server(b.listener.protocol_factory, b.host, b.port, backlog=1024,
                                              reuse_address=True)
            b.listener.server = server
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                # One line per socket on stderr: tests and scripts wait for it (readiness).
                print(f"albatross: listening {b.scheme} {host} {port}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self.start()
        self.health.tick(time.monotonic())  # first health checks at once
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)
            except TimeoutError:
                self.tick()
        await self.shutdown()

    def tick(self) -> None:
        now = time.monotonic()
        wall = time.time()
        for b in self.bindings:
            b.listener.sweep(now)
            if b.listener.tls is not None:
                b.listener.tls.refresh(wall)
        for pool in self.pools:
            pool.sweep(now, self.idle_timeout)
        self.health.tick(now)

    async def shutdown(self) -> None:
        log.info("stopping: no new connections, %.0f s for open ones to finish", self.grace_seconds)
        for b in self.bindings:
            if b.listener.server is not None:
                b.listener.server.close()
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline:
            busy = False
            for b in self.bindings:
                for conn in list(b.listener.connections):
                    if conn.idle():
                        conn.close()
                    else:
                        busy = True
            if not busy and not any(b.listener.connections for b in self.bindings):
                break
            await asyncio.sleep(0.05)
        for b in self.bindings:
            for conn in list(b.listener.connections):
                conn.abort()
        for pool in self.pools:
            pool.close()
        self.health.close()
        log.info("stopped")

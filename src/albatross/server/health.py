"""Active health checks, ALB style: the I/O half (the decisions are in ``albatross.targets.health``).

Every target is probed on its own schedule (``health_check_interval_seconds``) with a new
connection and ``GET <path> HTTP/1.1``, ``Host: <target-ip>:<port>``, ``User-Agent:
ELB-HealthChecker/2.0``, ``Connection: close``, as ALB sends it. The probe reads the status line
within ``health_check_timeout_seconds`` and reports the status code (or ``timeout`` /
``refused`` / ``malformed``) to the target's state machine, which applies the thresholds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger("albatross.health")

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})[ \r\n]")


@dataclass(frozen=True, slots=True)
class Probe:
    host: str
    port: int
    path: str
    timeout: float

    def request(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"GET {self.path} HTTP/1.1\r\nHost: {host}:{self.port}\r\nUser-Agent: ELB-HealthChecker/2.0\r\n"
                "Connection: close\r\n\r\n").encode()


async def probe(p: Probe) -> tuple[int | None, str | None]:
    """One health check: (status, None) when a response head arrived, else (None, reason)."""
    try:
        async with asyncio.timeout(p.timeout):
            reader, writer = await asyncio.open_connection(p.host, p.port)
            try:
                writer.write(p.request())
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return None, "timeout"
    except OSError as exc:
        return None, f"connection failed: {exc.strerror or exc}"
    m = _STATUS.match(line)
    if m is None:
        return None, "malformed response"
    return int(m.group(1)), None


class HealthChecker:
    """Schedules probes for targets; each target carries ``health`` (a state machine) and ``probe``."""

    def __init__(self, targets: Iterable[object]) -> None:
        self.targets = list(targets)
        self._running: dict[int, asyncio.Task[None]] = {}

    def tick(self, now: float) -> None:
        """Start the probes that are due (called about once a second)."""
        for target in self.targets:
            health = target.health  # type: ignore[attr-defined]
            if target.probe is None or id(target) in self._running or health.next_check_at() > now:  # type: ignore[attr-defined]
                continue
            task = asyncio.get_running_loop().create_task(self._check(target))
            self._running[id(target)] = task
            task.add_done_callback(lambda _t, key=id(target): self._running.pop(key, None))

    async def _check(self, target: object) -> None:
        status, error = await probe(target.probe)  # type: ignore[attr-defined]
        health = target.health  # type: ignore[attr-defined]
        before = health.state
        health.record(time.monotonic(), status=status, error=error)
        if health.state != before:
            log.info("target %s:%s is %s (%s)", target.host, target.port, health.state,  # type: ignore[attr-defined]
                     health.reason or "passing health checks")

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()

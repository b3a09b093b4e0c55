"""Run a plan: open its listeners, tick once a second, reload it live, stop gracefully.

The tick does the periodic work that must stay off the request path: timeout sweeps,
reloading ticket keys and OCSP staples that changed on disk (and rotating in-memory ticket
keys), health checks, and finishing the deregistration of draining targets.

**Reload** (SIGHUP, or ``POST /reload`` on the admin endpoint, which ``albatross reload``
uses) compiles the configuration file again into a new plan. Nothing running is touched until
the whole new plan has compiled and every new listening socket is open; if anything fails,
the running configuration keeps serving and the reason is logged and returned. Then, in one
step on the event loop:

* a listener whose ``(address, port)`` stays keeps its socket and its open connections, and
  takes the new rules, settings and TLS context: requests on open keep-alive connections
  follow the new rules, new handshakes get the new certificates, established TLS sessions
  keep theirs. Tickets issued before the reload still resume (the ticket-key ring is kept);
  the session-ID cache belongs to a TLS context and starts empty.
* a listener that is gone stops accepting; its open connections finish their requests and
  close when idle (or after ``albatross.shutdown.timeout_seconds``).
* a target that stays registered (same group, address and port) keeps its health state, its
  connections and its in-flight requests; a new target starts ``initial``; a target no
  longer registered is *deregistered*: ``draining`` with no new requests, its in-flight
  requests finish, and deregistration completes as soon as none are left (ALB's rule; the
  target still reads ``draining`` until the delay ends) or when
  ``deregistration_delay.timeout_seconds`` runs out, which closes what is still open.

**Stop** (SIGTERM/SIGINT) closes the listening sockets at once, lets in-flight requests
finish for up to ``albatross.shutdown.timeout_seconds`` (closing each connection as soon as
it is idle) and then aborts what is left.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from albatross.errors import AlbatrossError
from albatross.http.exchange import App
from albatross.observe.observer import Observer
from albatross.server.health import HealthChecker
from albatross.proxy.forward import Target
from albatross.server.listener import Binding, Listener, ListenerSettings
from albatross.server.plan import Plan

log = logging.getLogger("albatross")

ADMIN_SETTINGS = ListenerSettings(handshake_timeout=10.0, idle_timeout=60.0, client_keep_alive=3600.0)


@dataclass(slots=True)
class ReloadResult:
    ok: bool
    message: str
    generation: int
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "message": self.message, "generation": self.generation, "at": self.at}


class Server:
    """Serve ``plan``; ``reload(previous_plan)`` (if given) compiles the configuration again."""

    def __init__(self, plan: Plan, *, reload: Callable[[Plan], Plan] | None = None,
                 admin_app: Callable[[Server], App] | None = None) -> None:
        self.plan = plan
        self._compile = reload
        self._admin_app = admin_app
        self.observer = Observer(plan.name)
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.retired: list[tuple[float, Listener]] = []
        self.draining: list[Target] = []
        self.health = HealthChecker(plan.targets)
        self.generation = 1
        self.loaded_at = time.time()
        self.last_reload: ReloadResult | None = None
        self._stop = asyncio.Event()
        self._reloading: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    # -- listeners -------------------------------------------------------------------------------

    def _bindings(self, plan: Plan) -> list[Binding]:
        bindings = list(plan.bindings)
        admin = plan.admin
        if admin is not None and self._admin_app is not None:
            bindings.append(Binding(admin[0], admin[1], "admin", self._admin_app(self), ADMIN_SETTINGS))
        return bindings

    def _observe(self, listener: Listener) -> None:
        if listener.scheme == "admin":  # the admin endpoint is not a listener of the load balancer
            listener.observe = None
            return
        observe = listener.observe
        if observe is None or observe.stats.scheme != listener.scheme:
            observe = listener.observe = self.observer.listener(listener.scheme, listener.host, listener.port)
        observe.tls = listener.tls

    def _adopt(self, plan: Plan) -> None:
        """Give a plan's target groups their (lasting) statistics and apply its log settings."""
        for name, group in plan.groups.items():
            group.stats = self.observer.group(name)
        self.observer.configure(name=plan.name, access_log=plan.access_log, connection_log=plan.connection_log)

    async def _open(self, b: Binding) -> Listener:
        listener = Listener.from_binding(b)
        self._observe(listener)
        loop = asyncio.get_running_loop()
        listener.server = await loop.create_server(listener.protocol_factory, b.host, b.port, backlog=1024,
                                                   reuse_address=True)
        for sock in listener.server.sockets:
            host, port = sock.getsockname()[:2]
            # One line per socket on stderr: tests and scripts wait for it (readiness).
            print(f"albatross: listening {b.scheme} {host} {port}", file=sys.stderr, flush=True)
        return listener

    async def start(self) -> None:
        try:
            self._adopt(self.plan)
        except OSError as exc:
            raise AlbatrossError(f"cannot open log file {exc.filename}: {exc.strerror or exc}") from None
        for b in self._bindings(self.plan):
            self.listeners[b.key] = await self._open(b)
        self.plan.commit(time.monotonic())

    def _all_listeners(self) -> Iterable[Listener]:
        yield from self.listeners.values()
        for _, listener in self.retired:
            yield listener

    # -- reload --------------------------------------------------------------------------------

    def request_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> ReloadResult:
        """Compile the configuration again and swap it in, or keep the running one and say why."""
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            result = await self._reload()
        self.last_reload = result
        if result.ok:
            log.info("reload: %s", result.message)
        else:
            log.error("reload failed, configuration %d keeps serving: %s", self.generation, result.message)
        return result

    async def _reload(self) -> ReloadResult:
        if self._compile is None:
            return ReloadResult(False, "this server was not started from a configuration file", self.generation)
        if self._stop.is_set():
            return ReloadResult(False, "the server is stopping", self.generation)
        try:
            # Off the loop: reading the file, certificates and resolving target names may take a while.
            plan = await asyncio.get_running_loop().run_in_executor(None, self._compile, self.plan)
        except AlbatrossError as exc:
            return ReloadResult(False, str(exc), self.generation)
        except Exception as exc:  # a bug must not take the running configuration down
            log.exception("reload: unexpected error compiling the configuration")
            return ReloadResult(False, f"internal error: {exc!r}", self.generation)
        try:
            self.observer.check_paths(plan.access_log, plan.connection_log)
        except OSError as exc:
            return ReloadResult(False, f"cannot open log file {exc.filename}: {exc.strerror or exc}", self.generation)
        wanted = {b.key: b for b in self._bindings(plan)}
        opened: dict[tuple[str, int], Listener] = {}
        for key, b in wanted.items():
            if key in self.listeners:
                continue
            try:
                opened[key] = await self._open(b)
            except BaseException as exc:  # OSError, or cancelled by a stop
                for listener in opened.values():
                    assert listener.server is not None
                    listener.server.close()
                if not isinstance(exc, OSError):
                    raise
                return ReloadResult(False, f"cannot listen on {b.host}:{b.port}: {exc.strerror or exc}",
                                    self.generation)
        if self._stop.is_set():
            for listener in opened.values():
                assert listener.server is not None
                listener.server.close()
            return ReloadResult(False, "the server is stopping", self.generation)
        # Everything is ready: swap, in one step on the loop.
        now = time.monotonic()
        for key, listener in list(self.listeners.items()):
            if key in wanted:
                listener.update(wanted[key])
                self._observe(listener)
            else:
                self._retire(listener, now)
                del self.listeners[key]
        self.listeners.update(opened)
        kept = {id(t) for t in plan.targets}
        removed = [t for t in self.plan.targets if id(t) not in kept]
        plan.commit(now)
        try:
            self._adopt(plan)
        except OSError as exc:  # checked before the swap; vanished since: keep serving, say so
            log.error("reload: cannot open log file %s: %s", exc.filename, exc.strerror or exc)
        for target in removed:
            self._deregister(target, now)
        self.plan = plan
        self.health.targets = list(plan.targets)
        self.generation += 1
        self.loaded_at = time.time()
        return ReloadResult(True, f"configuration {self.generation} is serving ({len(wanted)} listening sockets, "
                                  f"{len(plan.groups)} target groups, {len(removed)} targets deregistered)",
                            self.generation)

    def _retire(self, listener: Listener, now: float) -> None:
        log.info("listener %s:%d removed: no new connections, open ones finish", listener.host, listener.port)
        if listener.server is not None:
            listener.server.close()
        self.retired.append((now, listener))

    def _deregister(self, target: Target, now: float) -> None:
        health = target.health
        delay = target.deregistration_delay
        log.info("target %s:%d of %s deregistered: draining (%d in flight, up to %.0f s)", target.host,
                 target.port, target.group, target.outstanding, delay)
        if health is not None:
            health.deregister(now, delay)
        target.drain_until = now + delay
        self.draining.append(target)

    # -- running -------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self.start()
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        loop.add_signal_handler(signal.SIGUSR1, self.observer.reopen)
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
        refreshed = set()
        for listener in self._all_listeners():
            listener.sweep(now)
            if listener.tls is not None and id(listener.tls) not in refreshed:
                refreshed.add(id(listener.tls))
                listener.tls.refresh(wall)
        idle_timeout = self.plan.idle_timeout
        for target in [*self.plan.targets, *self.draining]:
            target.pool.sweep(now, idle_timeout)
        self.health.tick(now)
        self._finish_draining(now)
        self._finish_retired(now)

    def _finish_draining(self, now: float) -> None:
        """ALB's rule: deregistration completes as soon as no request is in flight (connections
        closed), though the target reads ``draining`` until the delay ends; requests still
        running when the delay ends are cut (502 to clients that have no response head yet)."""
        for target in list(self.draining):
            pool = target.pool
            if not pool.closed and not target.outstanding:
                log.info("target %s:%d of %s: deregistration complete", target.host, target.port, target.group)
                pool.close()
            if now < target.drain_until:
                continue
            if target.outstanding:
                log.info("target %s:%d: deregistration delay over, closing %d in-flight requests",
                         target.host, target.port, target.outstanding)
            pool.close(abort_busy=True)
            if target.health is not None:
                target.health.handle_timer(now)
            self.draining.remove(target)

    def _finish_retired(self, now: float) -> None:
        limit = self.plan.stop_timeout
        for entry in list(self.retired):
            since, listener = entry
            for conn in list(listener.connections):
                if conn.idle():
                    conn.close()
                elif now - since > limit:
                    conn.abort()
            if not listener.connections:
                self.retired.remove(entry)

    async def shutdown(self) -> None:
        grace = self.plan.stop_timeout
        listeners = list(self._all_listeners())
        for listener in listeners:
            if listener.server is not None:
                listener.server.close()
        log.info("stopping: no new connections, %.0f s for open ones to finish", grace)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            busy = False
            for listener in listeners:
                for conn in list(listener.connections):
                    if conn.idle():
                        conn.close()
                    else:
                        busy = True
            if not busy and not any(listener.connections for listener in listeners):
                break
            await asyncio.sleep(0.05)
        for listener in listeners:
            for conn in list(listener.connections):
                conn.abort()
        for target in [*self.plan.targets, *self.draining]:
            target.pool.close()
        for _ in range(3):  # connection_lost callbacks run on the next turns: their requests get logged
            await asyncio.sleep(0)
        self.health.close()
        for task in self._tasks:
            task.cancel()
        self.observer.close()  # every queued log line is written
        log.info("stopped")

"""Compile a validated configuration into runtime objects: listeners, TLS contexts, target pools.

This is the second phase of configuration: the model (``albatross.config``) says what was
asked for; the plan holds what serves it. Problems only visible now (a certificate file that
cannot be read, an unknown security policy) are reported with the configuration file and the
place inside it, as validation errors are.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from albatross.config.load import resolve
from albatross.config.model import Action, Config, TargetGroup
from albatross.config.model import Listener as ListenerModel
from albatross.errors import ConfigError
from albatross.http.forwarding import ForwardingPolicy
from albatross.http.messages import SERVER, Response
from albatross.proxy.app import FixedResponseAction, ForwardAction, RedirectAction, listener_app
from albatross.proxy.router import (
    CompiledRule,
    Router,
    RuleError,
    check_rule_conditions,
    compile_condition,
    redirect_status,
    validate_redirect,
)
from albatross.proxy.forward import Target, TargetGroupRuntime
from albatross.server.health import Probe
from albatross.server.listener import Binding, ListenerSettings
from albatross.server.upstream import TargetPool
from albatross.targets.balancing import create_balancer
from albatross.targets.group import new_sticky_key
from albatross.targets.health import HealthCheckSettings, TargetHealth
from albatross.tls import CertificateSpec, ServerContext, TicketKeyRing, TLSSettings, get_policy


@dataclass(slots=True)
class Plan:
    """Everything a configuration compiles into, ready to serve.

    Compiling has no effect on a running server: objects carried over from the ``previous``
    plan (targets with their health, pools and in-flight counts, the ticket-key ring, the
    stickiness key) are only referenced, and what must change on them (new health-check
    settings, a group no longer in use) waits in ``updates`` until :meth:`commit`, which the
    server calls once the whole new plan is in place. A failed compile leaves nothing changed.
    """

    bindings: list[Binding] = field(default_factory=list)
    groups: dict[str, TargetGroupRuntime] = field(default_factory=dict)
    idle_timeout: float = 60.0
    stop_timeout: float = 30.0
    key_log: str | None = None
    admin: tuple[str, int] | None = None
    ring: TicketKeyRing | None = None
    sticky_key: bytes = field(default_factory=new_sticky_key)
    source: str | None = None
    digest: str | None = None  # SHA-256 of the configuration file as loaded
    name: str = "albatross"  # load_balancer.name (the access log's elb field)
    access_log: str | None = None  # access_logs.file.path when enabled
    connection_log: str | None = None  # connection_logs.file.path when enabled
    updates: list[Callable[[float], None]] = field(default_factory=list)

    @property
    def targets(self) -> list[Target]:
        return [t for group in self.groups.values() for t in group.targets]

    @property
    def pools(self) -> list[TargetPool]:
        return [t.pool for t in self.targets]  # type: ignore[misc]

    def commit(self, now: float) -> None:
        updates, self.updates = self.updates, []
        for update in updates:
            update(now)


def forwarding_policy(config: Config) -> ForwardingPolicy:
    lb = config.load_balancer
    return ForwardingPolicy(
        xff_mode=str(lb.attribute("routing.http.xff_header_processing.mode")),
        xff_client_port=bool(lb.attribute("routing.http.xff_client_port.enabled")),
        preserve_host=bool(lb.attribute("routing.http.preserve_host_header.enabled")),
        drop_invalid_header_fields=bool(lb.attribute("routing.http.drop_invalid_header_fields.enabled")),
        desync_mitigation_mode=str(lb.attribute("routing.http.desync_mitigation_mode")),
        tls_headers=bool(lb.attribute("routing.http.x_amzn_tls_version_and_cipher_suite.enabled")),
    )


def file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def compile_plan(config: Config, source: str, previous: Plan | None = None) -> Plan:
    """Compile ``config`` (loaded from ``source``); with ``previous``, carry over what a reload keeps."""
    base = os.path.dirname(os.path.abspath(source))
    lb = config.load_balancer
    plan = Plan(idle_timeout=float(lb.attribute("idle_timeout.timeout_seconds")),  # type: ignore[arg-type]
                stop_timeout=float(lb.attribute("albatross.shutdown.timeout_seconds")),  # type: ignore[arg-type]
                source=source, digest=file_digest(source))
    if previous is not None:
        plan.sticky_key = previous.sticky_key
    plan.name = lb.name
    if lb.attribute("access_logs.file.enabled"):
        plan.access_log = resolve(str(lb.attribute("access_logs.file.path")), base)
    if lb.attribute("connection_logs.file.enabled"):
        plan.connection_log = resolve(str(lb.attribute("connection_logs.file.path")), base)
    if config.admin is not None:
        plan.admin = (config.admin.address, config.admin.port)
    plan.key_log = resolve(config.tls.key_log_file, base) or os.environ.get("SSLKEYLOGFILE") or None
    now = time.monotonic()
    for g, group in enumerate(config.target_groups):
        before = previous.groups.get(group.name) if previous is not None else None
        plan.groups[group.name] = _target_group(group, now, source, f"target_groups[{g}]", plan, before)
    settings = ListenerSettings(
        handshake_timeout=config.tls.handshake_timeout_seconds,
        idle_timeout=plan.idle_timeout,
        client_keep_alive=float(lb.attribute("client_keep_alive.seconds")),  # type: ignore[arg-type]
    )
    policy = forwarding_policy(config)
    http2 = bool(lb.attribute("routing.http2.enabled"))
    for i, listener in enumerate(config.listeners):
        scheme = "https" if listener.protocol == "HTTPS" else "http"
        quotas = int(str(lb.attribute("albatross.rules.max_condition_values"))) <= 5
        app = listener_app(_router(listener, i, plan.groups, source, quotas), policy, scheme=scheme,
                           listener_port=listener.port)
        tls = None
        if listener.protocol == "HTTPS":
            if plan.ring is None:
                plan.ring = _ticket_ring(config, base, source, previous.ring if previous is not None else None)
            tls = _tls_context(config, i, base, source, plan.ring, http2)
        plan.bindings.append(Binding(listener.address, listener.port, scheme, app, settings, tls))
    in_use = {name for listener in config.listeners
              for action in [*listener.default_actions, *(a for rule in listener.rules for a in rule.actions)]
              for name, _ in action.groups}
    for name, runtime in plan.groups.items():
        for target in runtime.targets:
            if target.health is not None:
                plan.updates.append(lambda now, h=target.health, used=name in in_use: h.set_in_use(now, used))
    return plan


def _ticket_ring(config: Config, base: str, source: str, previous: TicketKeyRing | None) -> TicketKeyRing:
    """The session-ticket key ring; a reload keeps the running one while its file and period
    stay the same, so tickets issued before the reload still resume."""
    path = resolve(config.tls.session_ticket_keys, base)
    rotation = config.tls.session_ticket_rotation_seconds
    if previous is not None and previous.path == path and previous.rotation_seconds == rotation:
        return previous
    try:
        return TicketKeyRing(path, rotation, now=time.time())
    except ConfigError as exc:
        raise ConfigError(source, str(exc), where="tls.session_ticket_keys") from None


def _tls_context(config: Config, index: int, base: str, source: str, ring: TicketKeyRing,
                 http2: bool) -> ServerContext:
    listener = config.listeners[index]
    where = f"listeners[{index}]"
    try:
        get_policy(listener.policy)
    except ConfigError as exc:
        raise ConfigError(source, exc.reason, where=f"{where}.ssl_policy") from None
    certificates = tuple(
        CertificateSpec(resolve(c.certificate, base) or "", resolve(c.private_key, base) or "",
                        resolve(c.ocsp_staple, base))
        for c in listener.certificates
    )
    settings = TLSSettings(
        certificates=certificates,
        policy=listener.policy,
        alpn_policy=tuple(listener.alpn_policy) if listener.alpn_policy is not None else ("h2", "http/1.1"),
        http2_enabled=http2,
        ticket_lifetime_seconds=config.tls.session_ticket_lifetime_seconds,
    )
    try:
        return ServerContext(settings, ring, key_log=bool(config.tls.key_log_file or os.environ.get("SSLKEYLOGFILE")))
    except ConfigError as exc:
        raise ConfigError(source, str(exc), where=f"{where}.certificates") from None


def _router(listener: ListenerModel, index: int, groups: dict[str, TargetGroupRuntime], source: str,
            quotas: bool) -> Router:
    """Compile a listener's rules (conditions, actions) into its router.

    ``quotas`` keeps ALB's per-rule limits (5 condition values, 5 wildcards); the model has
    already counted values against ``albatross.rules.max_condition_values``.
    """
    rules = []
    for k, rule in enumerate(listener.rules):
        where = f"listeners[{index}].rules[{k}]"
        specs = [condition.model_dump(exclude_none=True) for condition in rule.conditions]
        conditions = []
        for c, spec in enumerate(specs):
            try:
                conditions.append(compile_condition(spec, max_values=None))
            except RuleError as exc:
                raise ConfigError(source, str(exc), where=f"{where}.conditions[{c}]") from None
        try:
            check_rule_conditions(specs, enforce_quotas=quotas)
        except RuleError as exc:
            raise ConfigError(source, str(exc), where=f"{where}.conditions") from None
        action = _action(rule.actions[0], listener, f"{where}.actions[0]", groups, source)
        rules.append(CompiledRule(rule.priority, tuple(conditions), action))
    default = _action(listener.default_actions[0], listener, f"listeners[{index}].default_actions[0]", groups, source)
    return Router(rules, default)


def _action(action: Action, listener: ListenerModel, where: str, groups: dict[str, TargetGroupRuntime],
            source: str) -> object:
    if action.type == "forward":
        stickiness = action.forward_config.target_group_stickiness_config if action.forward_config else None
        seconds = float(stickiness.duration_seconds or 0) if stickiness is not None and stickiness.enabled else 0.0
        return ForwardAction([groups[name] for name, _ in action.groups], [w for _, w in action.groups],
                             sticky_seconds=seconds)
    if action.type == "redirect":
        assert action.redirect_config is not None
        config = action.redirect_config.model_dump()
        try:
            validate_redirect(config, listener_protocol=listener.protocol, listener_port=listener.port)
        except RuleError as exc:
            raise ConfigError(source, str(exc), where=f"{where}.redirect_config") from None
        return RedirectAction(config, redirect_status(config))
    fixed = action.fixed_response_config
    assert fixed is not None
    headers = [(b"Server", SERVER)]
    if fixed.content_type:
        headers.append((b"Content-Type", fixed.content_type.encode()))
    return FixedResponseAction(Response(int(fixed.status_code), headers, fixed.message_body.encode()))


def _condition_text(condition: object) -> str:
    spec = condition.model_dump(exclude_none=True)  # type: ignore[attr-defined]
    field = spec.pop("field")
    config = next(iter(spec.values()))
    if field == "http-header":
        return f"{field} {config['http_header_name']} in {config['values']}"
    if field == "query-string":
        pairs = [f"{v.get('key', '*')}={v['value']}" for v in config["values"]]
        return f"{field} in {pairs}"
    return f"{field} in {config['values']}"


def _action_text(action: Action) -> str:
    if action.type == "forward":
        groups = action.groups
        if len(groups) == 1:
            return f"forward to {groups[0][0]}"
        return "forward to " + ", ".join(f"{name} (weight {weight})" for name, weight in groups)
    if action.type == "redirect":
        r = action.redirect_config
        assert r is not None
        return f"redirect {r.status_code[5:]} to {r.protocol}://{r.host}:{r.port}{r.path}?{r.query}"
    f = action.fixed_response_config
    assert f is not None
    return f"fixed-response {f.status_code} {f.content_type or ''} ({len(f.message_body)} bytes)".replace("  ", " ")


def describe(config: Config) -> str:
    """The compiled plan as text: listeners with their rules in evaluation order, target groups."""
    lines = []
    for i, listener in enumerate(config.listeners):
        tls = f" {listener.policy}, {len(listener.certificates)} certificate(s)" if listener.protocol == "HTTPS" else ""
        lines.append(f"listener[{i}] {listener.protocol} {listener.address}:{listener.port}{tls}")
        lines.append(f"  {'priority':>8}  {'conditions':<60}  action")
        for rule in sorted(listener.rules, key=lambda r: r.priority):
            conditions = " AND ".join(_condition_text(c) for c in rule.conditions)
            lines.append(f"  {rule.priority:>8}  {conditions:<60}  {_action_text(rule.actions[0])}")
        lines.append(f"  {'default':>8}  {'(all other requests)':<60}  {_action_text(listener.default_actions[0])}")
    for group in config.target_groups:
        targets = ", ".join(f"{t.id}:{t.port or group.port}" for t in group.targets) or "(no targets)"
        lines.append(f"target group {group.name} {group.protocol} port {group.port}: {targets}")
    return "\n".join(lines)


def _target_group(group: TargetGroup, now: float, source: str, where: str, plan: Plan,
                  before: TargetGroupRuntime | None) -> TargetGroupRuntime:
    """A target group's runtime: its balancer, and per target a pool, a health state machine and
    the probe that feeds it. Targets already registered in ``before`` (same group, address and
    port) are carried over with their health and connections; their new settings are applied
    at commit."""
    try:
        settings = HealthCheckSettings(
            enabled=group.health_check_enabled, path=group.health_check_path, port=group.health_check_port,
            protocol=group.health_check_protocol, interval_seconds=group.health_check_interval_seconds,
            timeout_seconds=group.health_check_timeout_seconds, healthy_threshold=group.healthy_threshold_count,
            unhealthy_threshold=group.unhealthy_threshold_count, matcher=group.matcher.http_code)
        balancer = create_balancer(
            str(group.attribute("load_balancing.algorithm.type")),
            anomaly_mitigation=group.attribute("load_balancing.algorithm.anomaly_mitigation") == "on")
    except ValueError as exc:
        raise ConfigError(source, str(exc), where=where) from None
    slow_start = float(group.attribute("slow_start.duration_seconds"))  # type: ignore[arg-type]
    delay = float(group.attribute("deregistration_delay.timeout_seconds"))  # type: ignore[arg-type]
    runtime = TargetGroupRuntime(group.name, balancer=balancer, sticky_key=plan.sticky_key)
    if group.attribute("stickiness.enabled"):
        if group.attribute("stickiness.type") == "app_cookie":
            runtime.app_cookie = str(group.attribute("stickiness.app_cookie.cookie_name")).encode()
            runtime.app_seconds = float(group.attribute("stickiness.app_cookie.duration_seconds"))  # type: ignore[arg-type]
        else:
            runtime.sticky_seconds = float(group.attribute("stickiness.lb_cookie.duration_seconds"))  # type: ignore[arg-type]
    kept = {(t.host, t.port): t for t in before.targets} if before is not None else {}
    for k, t in enumerate(group.targets):
        port = t.port or group.port
        for address in _addresses(t.id, port, source, f"{where}.targets[{k}]"):
            probe = None
            if settings.enabled:
                probe = Probe(address, settings.check_port(port), settings.path, float(settings.timeout_seconds))
            name = None if address == t.id else t.id
            target = kept.pop((address, port), None)
            if target is None:
                target = Target(address, port, TargetPool(address, port), health=TargetHealth(settings, now),
                                probe=probe, slow_start_seconds=slow_start, group=group.name, name=name,
                                deregistration_delay=delay)
            else:
                plan.updates.append(lambda now, tg=target, p=probe, n=name: _reconfigure(
                    tg, now, settings, p, n, slow_start, delay))
            if target not in runtime.targets:
                runtime.targets.append(target)
    return runtime


def _reconfigure(target: Target, now: float, settings: HealthCheckSettings, probe: Probe | None, name: str | None,
                 slow_start: float, delay: float) -> None:
    assert target.health is not None
    target.health.reconfigure(settings, now)
    target.probe, target.name = probe, name
    target.slow_start_seconds, target.deregistration_delay = slow_start, delay


def _addresses(host: str, port: int, source: str, where: str) -> list[str]:
    """A target's addresses: an IP address as given; a host name (beyond ALB) resolved now,
    one target per address, in the resolver's order."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(source, f"target host name {host!r} does not resolve: {exc}", where=where) from None
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return out

"""Compile a validated configuration into runtime objects: listeners, TLS contexts, target pools.

This is the second phase of configuration: the model (``albatross.config``) says what was
asked for; the plan holds what serves it. Problems only visible now (a certificate file that
cannot be read, an unknown security policy) are reported with the configuration file and the
place inside it, as validation errors are.
"""

from __future__ import annotations

import os
import time
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
from albatross.server.lifecycle import Binding
from albatross.server.listener import Listener, ListenerSettings
from albatross.server.upstream import TargetPool
from albatross.targets.balancing import create_balancer
from albatross.targets.health import HealthCheckSettings, TargetHealth
from albatross.tls import CertificateSpec, ServerContext, TicketKeyRing, TLSSettings, get_policy


@dataclass(slots=True)
class Plan:
    bindings: list[Binding] = field(default_factory=list)
    groups: dict[str, TargetGroupRuntime] = field(default_factory=dict)
    pools: list[TargetPool] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    idle_timeout: float = 60.0
    key_log: str | None = None


def forwarding_policy(config: Config) -> ForwardingPolicy:
    lb = config.load_balancer
    return ForwardingPolicy(
        xff_mode=str(lb.attribute("routing.http.xff_header_processing.mode")),
        xff_client_port=bool(lb.attribute("routing.http.xff_client_port.enabled")),
        preserve_host=bool(lb.attribute("routing.http.preserve_host_header.enabled")),
        drop_invalid_header_fields=bool(lb.attribute("routing.http.drop_invalid_header_fields.enabled")),
        desync_mitigation_mode=str(lb.attribute("routing.http.desync_mitigation_mode")),
    )


def compile_plan(config: Config, source: str) -> Plan:
    base = os.path.dirname(os.path.abspath(source))
    lb = config.load_balancer
    plan = Plan(idle_timeout=float(lb.attribute("idle_timeout.timeout_seconds")))  # type: ignore[arg-type]
    plan.key_log = resolve(config.tls.key_log_file, base) or os.environ.get("SSLKEYLOGFILE") or None
    now = time.monotonic()
    for g, group in enumerate(config.target_groups):
        plan.groups[group.name] = runtime = _target_group(group, now, source, f"target_groups[{g}]")
        plan.targets += runtime.targets
        plan.pools += [t.pool for t in runtime.targets]  # type: ignore[misc]
    settings = ListenerSettings(
        handshake_timeout=config.tls.handshake_timeout_seconds,
        idle_timeout=plan.idle_timeout,
        client_keep_alive=float(lb.attribute("client_keep_alive.seconds")),  # type: ignore[arg-type]
    )
    policy = forwarding_policy(config)
    http2 = bool(lb.attribute("routing.http2.enabled"))
    ring: TicketKeyRing | None = None
    for i, listener in enumerate(config.listeners):
        scheme = "https" if listener.protocol == "HTTPS" else "http"
        quotas = int(str(lb.attribute("albatross.rules.max_condition_values"))) <= 5
        app = listener_app(_router(listener, i, plan.groups, source, quotas), policy, scheme=scheme,
                           listener_port=listener.port)
        tls = None
        if listener.protocol == "HTTPS":
            if ring is None:
                ring = _ticket_ring(config, base, source)
            tls = _tls_context(config, i, base, source, ring, http2)
        plan.bindings.append(Binding(Listener(app, settings, tls), listener.address, listener.port, scheme))
    return plan


def _ticket_ring(config: Config, base: str, source: str) -> TicketKeyRing:
    path = resolve(config.tls.session_ticket_keys, base)
    try:
        return TicketKeyRing(path, config.tls.session_ticket_rotation_seconds, now=time.time())
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
        return ForwardAction([groups[name] for name, _ in action.groups], [w for _, w in action.groups])
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


def _target_group(group: TargetGroup, now: float, source: str, where: str) -> TargetGroupRuntime:
    """A target group's runtime: its balancer, and per target a pool, a health state machine and
    the probe that feeds it."""
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
    runtime = TargetGroupRuntime(group.name, balancer=balancer)
    if group.attribute("stickiness.enabled"):
        if group.attribute("stickiness.type") != "lb_cookie":
            raise ConfigError(source, "stickiness.type app_cookie is not supported yet (lb_cookie is)",
                              where=f"{where}.attributes")
        runtime.sticky_seconds = float(group.attribute("stickiness.lb_cookie.duration_seconds"))  # type: ignore[arg-type]
    for t in group.targets:
        port = t.port or group.port
        probe = None
        if settings.enabled:
            probe = Probe(t.id, settings.check_port(port), settings.path, float(settings.timeout_seconds))
        runtime.targets.append(Target(t.id, port, TargetPool(t.id, port), health=TargetHealth(settings, now),
                                      probe=probe, slow_start_seconds=slow_start))
    return runtime

"""The configuration model: ALB's API shapes in snake_case, as frozen pydantic models.

Every model forbids unknown keys, so a typo is an error (with a "did you mean" hint, see
``load.py``) rather than a silently ignored setting. Values are checked against ALB's ranges.
Attribute maps keep ALB's own attribute names (``idle_timeout.timeout_seconds``) and ALB's
convention that attribute values are strings; numbers and booleans are accepted too.

This module knows nothing about sockets or OpenSSL: certificates are paths here, loaded by
``albatross.tls`` when the configuration is compiled.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # albatross.tls.policies checks the name


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


AttributeValue = str | int | float | bool


def _as_bool(key: str, value: AttributeValue) -> bool:
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return text == "true"


def _as_int(key: str, value: AttributeValue, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{key} must be between {low} and {high}, not {number}")
    return number


def _as_choice(key: str, value: AttributeValue, choices: tuple[str, ...]) -> str:
    if str(value) not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


# ALB's load-balancer attributes that Albatross acts on, with ALB's defaults and ranges.
LB_ATTRIBUTES = {
    "idle_timeout.timeout_seconds": ("60", lambda k, v: _as_int(k, v, 1, 4000)),
    "client_keep_alive.seconds": ("3600", lambda k, v: _as_int(k, v, 60, 604800)),
    "routing.http2.enabled": ("true", _as_bool),
    "routing.http.desync_mitigation_mode": (
        "defensive", lambda k, v: _as_choice(k, v, ("monitor", "defensive", "strictest"))),
    "routing.http.drop_invalid_header_fields.enabled": ("false", _as_bool),
    "routing.http.preserve_host_header.enabled": ("false", _as_bool),
    "routing.http.xff_header_processing.mode": ("append", lambda k, v: _as_choice(k, v, ("append", "preserve", "remove"))),
    "routing.http.xff_client_port.enabled": ("false", _as_bool),
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": ("false", _as_bool),
    # ALB writes logs to S3 (access_logs.s3.*, connection_logs.s3.*); Albatross writes files.
    "access_logs.file.enabled": ("false", _as_bool),
    "access_logs.file.path": ("logs/access.log", lambda k, v: _as_path(k, v)),
    "connection_logs.file.enabled": ("false", _as_bool),
    "connection_logs.file.path": ("logs/connection.log", lambda k, v: _as_path(k, v)),
    # Beyond ALB: lift ALB's limit of 5 condition values per rule.
    "albatross.rules.max_condition_values": ("5", lambda k, v: _as_int(k, v, 1, 1000)),
    # Beyond ALB: how long a stop (SIGTERM) lets in-flight requests finish.
    "albatross.shutdown.timeout_seconds": ("30", lambda k, v: _as_int(k, v, 0, 3600)),
}


def _as_path(key: str, value: AttributeValue) -> str:
    text = str(value)
    if not text or "\0" in text:
        raise ValueError(f"{key} must be a file path")
    return text


AttributeTable = dict[str, tuple[str, Callable[[str, AttributeValue], object]]]


def check_attributes(value: dict[str, AttributeValue], table: AttributeTable, what: str) -> dict[str, AttributeValue]:
    """Every key known (else a "did you mean" hint) and every value in ALB's range."""
    for key, raw in value.items():
        if key not in table:
            close = difflib.get_close_matches(key, table, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown or unsupported {what} attribute {key!r}{hint}")
        table[key][1](key, raw)
    return value


def attribute_value(attributes: dict[str, AttributeValue], table: AttributeTable, key: str) -> object:
    """An attribute's value, converted, or ALB's default."""
    default, convert = table[key]
    return convert(key, attributes.get(key, default))


class LoadBalancer(Model):
    name: str = "albatross"
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        return check_attributes(value, LB_ATTRIBUTES, "load balancer")

    def attribute(self, key: str) -> object:
        return attribute_value(self.attributes, LB_ATTRIBUTES, key)


class TLSOptions(Model):
    """Beyond ALB: operator control of TLS state."""

    session_ticket_keys: str | None = None
    session_ticket_rotation_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    session_ticket_lifetime_seconds: Annotated[int, Field(ge=60, le=604800)] = 43200
    key_log_file: str | None = None
    handshake_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0


class Admin(Model):
    """Beyond ALB: the admin endpoint (target health, reload; loopback unless told otherwise)."""

    address: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 9900


class Certificate(Model):
    certificate: str
    private_key: str
    ocsp_staple: str | None = None


class TargetGroupTuple(Model):
    target_group_name: str
    weight: Annotated[int, Field(ge=0, le=999)] = 1


class TargetGroupStickinessConfig(Model):
    enabled: bool = False
    duration_seconds: Annotated[int, Field(ge=1, le=604800)] | None = None

    @model_validator(mode="after")
    def _duration_when_enabled(self) -> TargetGroupStickinessConfig:
        if self.enabled and self.duration_seconds is None:
            raise ValueError("duration_seconds is required when target group stickiness is enabled (1-604800)")
        return self


class ForwardConfig(Model):
    target_groups: Annotated[list[TargetGroupTuple], Field(min_length=1, max_length=5)]
    target_group_stickiness_config: TargetGroupStickinessConfig | None = None


class RedirectConfig(Model):
    protocol: str = "#{protocol}"
    port: str = "#{port}"
    host: str = "#{host}"
    path: str = "/#{path}"
    query: str = "#{query}"
    status_code: Literal["HTTP_301", "HTTP_302", "HTTP_307", "HTTP_308"]  # 307/308: beyond ALB


class FixedResponseConfig(Model):
    status_code: Annotated[str, Field(pattern=r"^[245][0-9][0-9]$")]
    content_type: Literal["text/plain", "text/css", "text/html", "application/javascript", "application/json"] | None = None
    message_body: Annotated[str, Field(max_length=1024)] = ""


class Action(Model):
    type: Literal["forward", "redirect", "fixed-response"]
    order: Annotated[int, Field(ge=1, le=50000)] | None = None
    target_group_name: str | None = None
    forward_config: ForwardConfig | None = None
    redirect_config: RedirectConfig | None = None
    fixed_response_config: FixedResponseConfig | None = None

    @model_validator(mode="after")
    def _config_matches_type(self) -> Action:
        given = {name for name in ("target_group_name", "forward_config", "redirect_config", "fixed_response_config")
                 if getattr(self, name) is not None}
        if self.type == "forward":
            if given not in ({"target_group_name"}, {"forward_config"}):
                raise ValueError("a forward action names its target group either by target_group_name or by forward_config")
        else:
            wanted = "redirect_config" if self.type == "redirect" else "fixed_response_config"
            if given != {wanted}:
                raise ValueError(f"a {self.type} action needs {wanted} and nothing else")
        return self

    @property
    def groups(self) -> list[tuple[str, int]]:
        """The forward action's target groups with their weights."""
        if self.target_group_name is not None:
            return [(self.target_group_name, 1)]
        if self.forward_config is None:
            return []
        return [(t.target_group_name, t.weight) for t in self.forward_config.target_groups]

    @property
    def group(self) -> str:
        return self.groups[0][0]


class ValuesConfig(Model):
    values: Annotated[list[str], Field(min_length=1)]


class HttpHeaderConfig(Model):
    http_header_name: Annotated[str, Field(min_length=1, max_length=40)]
    values: Annotated[list[str], Field(min_length=1)]


class QueryStringPair(Model):
    key: str | None = None
    value: str


class QueryStringConfig(Model):
    values: Annotated[list[QueryStringPair], Field(min_length=1)]


_CONDITION_CONFIGS = {
    "host-header": "host_header_config",
    "path-pattern": "path_pattern_config",
    "http-header": "http_header_config",
    "http-request-method": "http_request_method_config",
    "query-string": "query_string_config",
    "source-ip": "source_ip_config",
}


class RuleCondition(Model):
    field: Literal["host-header", "path-pattern", "http-header", "http-request-method", "query-string", "source-ip"]
    host_header_config: ValuesConfig | None = None
    path_pattern_config: ValuesConfig | None = None
    http_header_config: HttpHeaderConfig | None = None
    http_request_method_config: ValuesConfig | None = None
    query_string_config: QueryStringConfig | None = None
    source_ip_config: ValuesConfig | None = None

    @model_validator(mode="after")
    def _config_matches_field(self) -> RuleCondition:
        wanted = _CONDITION_CONFIGS[self.field]
        given = [name for name in _CONDITION_CONFIGS.values() if getattr(self, name) is not None]
        if given != [wanted]:
            raise ValueError(f"a {self.field} condition needs {wanted} and no other *_config")
        return self

    @property
    def value_count(self) -> int:
        config = getattr(self, _CONDITION_CONFIGS[self.field])
        return len(config.values)


class Rule(Model):
    priority: Annotated[int, Field(ge=1, le=50000)]
    conditions: Annotated[list[RuleCondition], Field(min_length=1)]
    actions: Annotated[list[Action], Field(min_length=1, max_length=1)]

    @model_validator(mode="after")
    def _one_of_each(self) -> Rule:
        for field in ("host-header", "path-pattern", "http-request-method", "source-ip"):
            if sum(c.field == field for c in self.conditions) > 1:
                raise ValueError(f"a rule has at most one {field} condition (list several values in it instead)")
        return self


class Listener(Model):
    protocol: Literal["HTTP", "HTTPS"]
    port: Annotated[int, Field(ge=1, le=65535)]
    address: str = "0.0.0.0"
    ssl_policy: str | None = None
    alpn_policy: list[str] | None = None
    certificates: list[Certificate] = Field(default_factory=list)
    default_actions: Annotated[list[Action], Field(min_length=1, max_length=1)]
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("alpn_policy")
    @classmethod
    def _known_protocols(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if name not in ("h2", "http/1.1"):
                raise ValueError(f"alpn_policy may list h2 and http/1.1, not {name!r}")
        return value

    @model_validator(mode="after")
    def _tls_needs_certificates(self) -> Listener:
        if self.protocol == "HTTPS" and not self.certificates:
            raise ValueError("an HTTPS listener needs at least one certificate")
        if self.protocol == "HTTP" and (self.certificates or self.ssl_policy):
            raise ValueError("certificates and ssl_policy belong to HTTPS listeners")
        return self

    @property
    def policy(self) -> str:
        return self.ssl_policy or DEFAULT_POLICY


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


class Target(Model):
    """A registered target: an IP address (ALB's ``ip`` target type) or, beyond ALB, a host name
    resolved when the configuration is loaded (one target per address)."""

    id: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @field_validator("id")
    @classmethod
    def _address_or_name(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOST_NAME.match(value):
                raise ValueError(f"target id must be an IP address or a host name, not {value!r}") from None
        return value


# ALB's target-group attributes that Albatross acts on, with ALB's defaults and ranges.
TG_ATTRIBUTES = {
    "load_balancing.algorithm.type": (
        "round_robin", lambda k, v: _as_choice(k, v, ("round_robin", "least_outstanding_requests", "weighted_random"))),
    "load_balancing.algorithm.anomaly_mitigation": ("off", lambda k, v: _as_choice(k, v, ("on", "off"))),
    "deregistration_delay.timeout_seconds": ("300", lambda k, v: _as_int(k, v, 0, 3600)),
    "slow_start.duration_seconds": ("0", lambda k, v: _slow_start(k, v)),
    "stickiness.enabled": ("false", _as_bool),
    "stickiness.type": ("lb_cookie", lambda k, v: _as_choice(k, v, ("lb_cookie", "app_cookie"))),
    "stickiness.lb_cookie.duration_seconds": ("86400", lambda k, v: _as_int(k, v, 1, 604800)),
    "stickiness.app_cookie.cookie_name": ("", lambda k, v: _app_cookie_name(k, v)),
    "stickiness.app_cookie.duration_seconds": ("86400", lambda k, v: _as_int(k, v, 1, 604800)),
}


def _slow_start(key: str, value: AttributeValue) -> int:
    number = _as_int(key, value, 0, 900)
    if 0 < number < 30:
        raise ValueError(f"{key} must be 0 (off) or between 30 and 900, not {number}")
    return number


def _app_cookie_name(key: str, value: AttributeValue) -> str:
    name = str(value)
    if name.startswith(("AWSALB", "AWSALBAPP", "AWSALBTG")):
        raise ValueError(f"{key} must not start with AWSALB, AWSALBAPP or AWSALBTG")
    return name


class Matcher(Model):
    http_code: Annotated[str, Field(pattern=r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")] = "200"

    @field_validator("http_code")
    @classmethod
    def _range(cls, value: str) -> str:
        for part in value.split(","):
            low, _, high = part.partition("-")
            codes = [int(low), int(high or low)]
            if not all(200 <= c <= 499 for c in codes) or codes[0] > codes[1]:
                raise ValueError(f"matcher codes must be within 200-499 (ranges low-high), not {part!r}")
        return value


class TargetGroup(Model):
    name: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")]
    protocol: Literal["HTTP"] = "HTTP"
    protocol_version: Literal["HTTP1"] = "HTTP1"
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    health_check_enabled: bool = True
    health_check_protocol: Literal["HTTP"] = "HTTP"
    health_check_port: Annotated[str, Field(pattern=r"^(traffic-port|[1-9][0-9]{0,4})$")] = "traffic-port"
    health_check_path: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^/[\x21-\x7e]*$")] = "/"
    health_check_interval_seconds: Annotated[int, Field(ge=5, le=300)] = 30
    health_check_timeout_seconds: Annotated[int, Field(ge=2, le=120)] = 5
    healthy_threshold_count: Annotated[int, Field(ge=2, le=10)] = 5
    unhealthy_threshold_count: Annotated[int, Field(ge=2, le=10)] = 2
    matcher: Matcher = Field(default_factory=Matcher)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        return check_attributes(value, TG_ATTRIBUTES, "target group")

    @model_validator(mode="after")
    def _app_cookie_named(self) -> TargetGroup:
        if self.sticky_type == "app_cookie" and not self.attributes.get("stickiness.app_cookie.cookie_name"):
            raise ValueError("stickiness.type app_cookie needs stickiness.app_cookie.cookie_name (the application's cookie)")
        return self

    @property
    def sticky_type(self) -> str | None:
        """``lb_cookie`` or ``app_cookie`` when stickiness is enabled, else None."""
        return str(self.attribute("stickiness.type")) if self.attribute("stickiness.enabled") else None

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> TargetGroup:
        if self.health_check_timeout_seconds >= self.health_check_interval_seconds:
            raise ValueError("health_check_timeout_seconds must be less than health_check_interval_seconds")
        seen = set()
        for k, t in enumerate(self.targets):
            key = (t.id.lower(), t.port or self.port)
            if key in seen:
                raise ValueError(f"targets[{k}] registers {t.id}:{key[1]} twice")
            seen.add(key)
        return self

    def attribute(self, key: str) -> object:
        return attribute_value(self.attributes, TG_ATTRIBUTES, key)


class Config(Model):
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    admin: Admin | None = None
    tls: TLSOptions = Field(default_factory=TLSOptions)
    listeners: Annotated[list[Listener], Field(min_length=1, max_length=50)]
    target_groups: list[TargetGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = [g.name for g in self.target_groups]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"target group names must be unique: {', '.join(sorted(duplicates))}")
        ports = [(listener.address, listener.port) for listener in self.listeners]
        if len(set(ports)) != len(ports):
            raise ValueError("two listeners share an address and port")
        if self.admin is not None:
            for i, listener in enumerate(self.listeners):
                if listener.port == self.admin.port and (
                        listener.address == self.admin.address or "0.0.0.0" in (listener.address, self.admin.address)
                        or "::" in (listener.address, self.admin.address)):
                    raise ValueError(f"admin.port {self.admin.port} is also listeners[{i}]'s port: "
                                     "the admin endpoint never shares a data-plane port")
        limit = int(self.load_balancer.attribute("albatross.rules.max_condition_values"))  # type: ignore[call-overload]
        for i, listener in enumerate(self.listeners):
            places = [(f"listeners[{i}].default_actions[{j}]", a) for j, a in enumerate(listener.default_actions)]
            places += [(f"listeners[{i}].rules[{k}].actions[{j}]", a)
                       for k, rule in enumerate(listener.rules) for j, a in enumerate(rule.actions)]
            for where, action in places:
                for group, _ in action.groups:
                    if group not in names:
                        raise ValueError(f"{where} forwards to unknown target group {group!r}")
                self._check_weighted_stickiness(where, action)
            priorities = [rule.priority for rule in listener.rules]
            if len(set(priorities)) != len(priorities):
                raise ValueError(f"listeners[{i}].rules: priorities must be unique within a listener")
            for k, rule in enumerate(listener.rules):
                values = sum(c.value_count for c in rule.conditions)
                if values > limit:
                    raise ValueError(
                        f"listeners[{i}].rules[{k}] has {values} condition values; ALB allows {limit} per rule "
                        "(load_balancer attribute albatross.rules.max_condition_values raises the limit, beyond ALB)")
        return self

    def _check_weighted_stickiness(self, where: str, action: Action) -> None:
        """ALB's rules for weighted forwards: target stickiness in a member group needs group
        stickiness on the action, and application-cookie stickiness cannot be used at all."""
        if len(action.groups) < 2:
            return
        by_name = {g.name: g for g in self.target_groups}
        config = action.forward_config.target_group_stickiness_config if action.forward_config else None
        for name, _ in action.groups:
            kind = by_name[name].sticky_type
            if kind == "app_cookie":
                raise ValueError(f"{where}: target group {name!r} uses app_cookie stickiness, which ALB does not "
                                 "allow in a weighted forward (several target groups)")
            if kind == "lb_cookie" and not (config and config.enabled):
                raise ValueError(f"{where}: target group {name!r} has stickiness, so this weighted forward needs "
                                 "forward_config.target_group_stickiness_config enabled (as ALB requires)")

"""The configuration reference, generated from the model: ``python -m albatross.config.reference``.

``docs/configuration.md`` is this module's output; a test keeps the two identical, so the
reference cannot drift from what the loader accepts.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from albatross.config.model import LB_ATTRIBUTES, TG_ATTRIBUTES, Config

# What each section corresponds to in ALB's API (ELBv2), for readers who know ALB.
ALB_EQUIVALENT = {
    "Config": "the whole load balancer",
    "LoadBalancer": "CreateLoadBalancer + ModifyLoadBalancerAttributes",
    "TLSOptions": "beyond ALB: operator control of TLS state",
    "Listener": "CreateListener",
    "Certificate": "Certificates[] / AddListenerCertificates (ocsp_staple beyond ALB)",
    "Action": "Action",
    "ForwardConfig": "ForwardActionConfig",
    "TargetGroupTuple": "TargetGroupTuple",
    "TargetGroupStickinessConfig": "TargetGroupStickinessConfig",
    "RedirectConfig": "RedirectActionConfig (HTTP_307/HTTP_308 beyond ALB)",
    "FixedResponseConfig": "FixedResponseActionConfig",
    "Rule": "CreateRule",
    "RuleCondition": "RuleCondition",
    "ValuesConfig": "HostHeader/PathPattern/HttpRequestMethod/SourceIp ConditionConfig",
    "HttpHeaderConfig": "HttpHeaderConditionConfig",
    "QueryStringConfig": "QueryStringConditionConfig",
    "QueryStringPair": "QueryStringKeyValuePair",
    "TargetGroup": "CreateTargetGroup + ModifyTargetGroupAttributes",
    "Matcher": "Matcher",
    "Target": "TargetDescription (RegisterTargets)",
    "Admin": "beyond ALB: the admin endpoint (target health, reload)",
}

# Keys whose ALB counterpart is not simply the key in PascalCase (None: beyond ALB).
ALB_KEY = {
    "Config.load_balancer": "CreateLoadBalancer", "Config.admin": None, "Config.tls": None,
    "Config.listeners": "CreateListener (one per item)", "Config.target_groups": "CreateTargetGroup (one per item)",
    "Listener.address": None, "Listener.rules": "CreateRule (one per item)",
    "Listener.alpn_policy": "AlpnPolicy (ALB offers it on TLS listeners of NLBs only; here on HTTPS)",
    "Certificate.certificate": "CertificateArn (a PEM file here)", "Certificate.private_key": None,
    "Certificate.ocsp_staple": None, "Action.type": "Type", "TargetGroup.targets": "RegisterTargets",
    "TargetGroup.matcher": "Matcher", "Target.id": "Id (an IP address; a host name is beyond ALB)",
    "Matcher.http_code": "HttpCode", "TargetGroupTuple.target_group_name": "TargetGroupArn (by name here)",
    "Action.target_group_name": "TargetGroupArn (by name here)",
}


def _alb_key(model: str, name: str) -> str:
    if model in ("TLSOptions", "Admin"):
        return "beyond ALB"
    key = f"{model}.{name}"
    if key in ALB_KEY:
        return ALB_KEY[key] or "beyond ALB"
    return "".join(part.capitalize() for part in name.split("_"))


def _alb_attribute(key: str) -> str:
    return "beyond ALB" if key.startswith("albatross.") or ".file." in key else "same name"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if args and (origin is typing.Union or type(annotation).__name__ == "UnionType"):
        return " or ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.append(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(root)
    return seen


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "(empty)" if not isinstance(field.default_factory(), BaseModel) else "(defaults)"
    return "`null`" if field.default is None else f"`{field.default}`"


def render() -> str:
    out = ["# Configuration reference", "",
           "Generated from the configuration model by `python -m albatross.config.reference`; a test checks that "
           "this file matches the model. Keys are ALB's API shapes in snake_case; attribute maps keep ALB's "
           "attribute names. Relative paths are relative to the configuration file.", ""]
    for model in _models(Config):
        out += [f"## {model.__name__}", "", f"ALB: {ALB_EQUIVALENT.get(model.__name__, '-')}", "",
                "| key | type | default | ALB |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                       f"{_alb_key(model.__name__, name)} |")
        out.append("")
    for title, table in (("Load balancer attributes (`load_balancer.attributes`)", LB_ATTRIBUTES),
                         ("Target group attributes (`target_groups[].attributes`)", TG_ATTRIBUTES)):
        out += [f"## {title}", "", "| attribute | default | ALB |", "|---|---|---|"]
        out += [f"| `{key}` | `{default}` | {_alb_attribute(key)} |" for key, (default, _) in table.items()]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")

"""Configuration files: each mistake gives the file, the place in it and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from albatross.config import load
from albatross.errors import ConfigError
from tests.helpers import Albatross

ROOT = Path(__file__).parents[2]

BASE = {
    "listeners": [{"protocol": "HTTP", "port": 8080, "default_actions": [{"type": "forward", "target_group_name": "web"}]}],
    "target_groups": [{"name": "web", "targets": [{"id": "127.0.0.1", "port": 9001}]}],
}


def write(tmp_path: Path, data: object, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def error(tmp_path: Path, data: object, name: str = "c.yaml") -> str:
    path = write(tmp_path, data, name)
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(path + ": "), message
    return message[len(path) + 2:]


def with_(change) -> dict:  # type: ignore[no-untyped-def,type-arg]
    import copy

    data = copy.deepcopy(BASE)
    change(data)
    return data


def test_the_example_loads() -> None:
    config = load(str(ROOT / "examples" / "http-only.yaml"))
    assert config.listeners[0].default_actions[0].group == "web"
    assert [t.port for t in config.target_groups[0].targets] == [9001, 9002]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["listeners"][0]["default_actions"][0].update(target_grup_name="web"),
     "listeners[0].default_actions[0].target_grup_name: unknown key 'target_grup_name' (did you mean 'target_group_name'?)"),
    (lambda d: d.pop("listeners"), "listeners: required key is missing"),
    (lambda d: d["listeners"][0].update(port=70000), "listeners[0].port: Input should be less than or equal to 65535"),
    (lambda d: d["listeners"][0].update(protocol="TCP"), "listeners[0].protocol: Input should be 'HTTP' or 'HTTPS'"),
    (lambda d: d["listeners"][0].update(protocol="HTTPS"), "listeners[0]: an HTTPS listener needs at least one certificate"),
    (lambda d: d["target_groups"][0].update(name="web!"), "target_groups[0].name: String should match pattern"),
    (lambda d: d["target_groups"].append({"name": "web"}), "target group names must be unique: web"),
    (lambda d: d["listeners"][0]["default_actions"][0].update(target_group_name="api"),
     "listeners[0].default_actions[0] forwards to unknown target group 'api'"),
    (lambda d: d.update(load_balancer={"attributes": {"idle_timeout.timeout_second": 5}}),
     "load_balancer.attributes: unknown or unsupported load balancer attribute 'idle_timeout.timeout_second' "
     "(did you mean 'idle_timeout.timeout_seconds'?)"),
    (lambda d: d.update(load_balancer={"attributes": {"idle_timeout.timeout_seconds": 0}}),
     "load_balancer.attributes: idle_timeout.timeout_seconds must be between 1 and 4000, not 0"),
    (lambda d: d.update(load_balancer={"attributes": {"routing.http2.enabled": "maybe"}}),
     "load_balancer.attributes: routing.http2.enabled must be true or false, not 'maybe'"),
    (lambda d: d.update(load_balancer={"attributes": {"routing.http.xff_header_processing.mode": "add"}}),
     "routing.http.xff_header_processing.mode must be one of append, preserve, remove, not 'add'"),
    (lambda d: d["target_groups"][0]["targets"][0].update(port=0), "target_groups[0].targets[0].port: Input should be"),
    (lambda d: d["listeners"][0].update(alpn_policy=["h3"]), "alpn_policy may list h2 and http/1.1, not 'h3'"),
    (lambda d: d["listeners"].append(dict(d["listeners"][0])), "two listeners share an address and port"),
])
def test_mistakes_are_located(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert expected in error(tmp_path, with_(change))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, "listeners:\n  - protocol: HTTP\n    port: [8080\n")
    assert message.startswith("line ") and "not valid YAML" in message


def test_json_is_accepted(tmp_path: Path) -> None:
    import json

    path = tmp_path / "c.json"
    path.write_text(json.dumps(BASE))
    assert load(str(path)).listeners[0].port == 8080


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.yaml: cannot read configuration: No such file or directory"):
        load(str(tmp_path / "missing.yaml"))


def test_serve_refuses_a_broken_config_with_the_place(tmp_path: Path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    data = with_(lambda d: d["listeners"][0].update(
        protocol="HTTPS", ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-6",
        certificates=[{"certificate": str(site_rsa.cert), "private_key": str(site_rsa.key)}]))
    path = write(tmp_path, data)
    proc = Albatross(serve=path, expect_failure=True)
    assert proc.returncode == 2
    assert (f"albatross: error: {path}: listeners[0].ssl_policy: unknown security policy "
            "'ELBSecurityPolicy-TLS13-1-2-2021-6' (did you mean ELBSecurityPolicy-TLS13-1-2-2021-06?)") in proc.log


def test_serve_names_a_missing_certificate_with_its_listener(tmp_path: Path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    data = with_(lambda d: d["listeners"][0].update(
        protocol="HTTPS", certificates=[{"certificate": "nope.pem", "private_key": str(site_rsa.key)}]))
    path = write(tmp_path, data)
    proc = Albatross(serve=path, expect_failure=True)
    assert f"albatross: error: {path}: listeners[0].certificates: {tmp_path / 'nope.pem'}: cannot read certificate" \
           in proc.log


def test_check_validates_and_prints_rules_in_evaluation_order() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "albatross", "check", str(ROOT / "examples" / "rules.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    priorities = [line.split()[0] for line in lines if line.startswith("  ") and line.split()[0].isdigit()]
    assert priorities == ["10", "20", "30", "40"]
    assert any(line.strip().startswith("default") and "forward to web" in line for line in lines)
    assert "forward to api-blue (weight 90), api-green (weight 10)" in out.stdout
    assert out.stdout.rstrip().endswith("rules.yaml: OK")


def test_check_fails_on_a_broken_file_with_the_place(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write(tmp_path, with_(lambda d: d["listeners"][0].update(rules=[
        {"priority": 1, "conditions": [{"field": "source-ip", "source_ip_config": {"values": ["10.0.0.1/8"]}}],
         "actions": [{"type": "forward", "target_group_name": "web"}]}])))
    out = subprocess.run([sys.executable, "-m", "albatross", "check", path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"albatross: error: {path}: listeners[0].rules[0].conditions[0]: " in out.stderr


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["listeners"][0].update(rules=[{"priority": 0, "conditions": [
        {"field": "path-pattern", "path_pattern_config": {"values": ["/a"]}}], "actions": [
        {"type": "forward", "target_group_name": "web"}]}]),
     "listeners[0].rules[0].priority: Input should be greater than or equal to 1"),
    (lambda d: d["listeners"][0].update(rules=[{"priority": 1, "conditions": [
        {"field": "path-pattern", "host_header_config": {"values": ["a.b"]}}], "actions": [
        {"type": "forward", "target_group_name": "web"}]}]),
     "a path-pattern condition needs path_pattern_config and no other *_config"),
    (lambda d: d["listeners"][0].update(rules=[{"priority": 1, "conditions": [
        {"field": "path-pattern", "path_pattern_config": {"values": ["/a", "/b", "/c", "/d", "/e", "/f"]}}],
        "actions": [{"type": "forward", "target_group_name": "web"}]}]),
     "listeners[0].rules[0] has 6 condition values; ALB allows 5 per rule"),
    (lambda d: d["listeners"][0].update(default_actions=[{"type": "redirect", "target_group_name": "web"}]),
     "a redirect action needs redirect_config and nothing else"),
    (lambda d: d["listeners"][0].update(default_actions=[{"type": "fixed-response", "fixed_response_config": {
        "status_code": "302"}}]), "fixed_response_config.status_code: String should match pattern"),
    (lambda d: d["listeners"][0].update(rules=[{"priority": 7, "conditions": [
        {"field": "path-pattern", "path_pattern_config": {"values": ["/a"]}}], "actions": [
        {"type": "forward", "target_group_name": "web"}]}] * 2),
     "listeners[0].rules: priorities must be unique within a listener"),
])
def test_rule_mistakes_are_located(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert expected in error(tmp_path, with_(change))


def test_configuration_reference_matches_the_model() -> None:
    from albatross.config.reference import render

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run python -m albatross.config.reference"
    for key in ("idle_timeout.timeout_seconds", "health_check_interval_seconds", "redirect_config", "source_ip_config"):
        assert key in committed


def _weighted(d: dict, **stickiness: object) -> None:  # type: ignore[type-arg]
    d["target_groups"].append({"name": "api", "targets": [{"id": "127.0.0.1", "port": 9002}]})
    forward: dict = {"target_groups": [{"target_group_name": "web", "weight": 1},  # type: ignore[type-arg]
                                       {"target_group_name": "api", "weight": 1}]}
    if stickiness:
        forward["target_group_stickiness_config"] = stickiness
    d["listeners"][0]["default_actions"] = [{"type": "forward", "forward_config": forward}]


def _sticky(d: dict, kind: str, **extra: object) -> None:  # type: ignore[type-arg]
    d["target_groups"][0]["attributes"] = {"stickiness.enabled": True, "stickiness.type": kind, **extra}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: (_sticky(d, "lb_cookie"), _weighted(d)),
     "listeners[0].default_actions[0]: target group 'web' has stickiness, so this weighted forward needs "
     "forward_config.target_group_stickiness_config enabled"),
    (lambda d: (_sticky(d, "app_cookie", **{"stickiness.app_cookie.cookie_name": "S"}),
                _weighted(d, enabled=True, duration_seconds=60)),
     "target group 'web' uses app_cookie stickiness, which ALB does not allow in a weighted forward"),
    (lambda d: _sticky(d, "app_cookie"),
     "target_groups[0]: stickiness.type app_cookie needs stickiness.app_cookie.cookie_name"),
    (lambda d: _sticky(d, "app_cookie", **{"stickiness.app_cookie.cookie_name": "AWSALBAPP-x"}),
     "stickiness.app_cookie.cookie_name must not start with AWSALB"),
    (lambda d: _weighted(d, enabled=True),
     "target_group_stickiness_config: duration_seconds is required when target group stickiness is enabled"),
    (lambda d: d.update(admin={"port": 8080}),
     "admin.port 8080 is also listeners[0]'s port: the admin endpoint never shares a data-plane port"),
    (lambda d: d.update(admin={"port": 9900, "adress": "127.0.0.1"}),
     "admin.adress: unknown key 'adress' (did you mean 'address'?)"),
    (lambda d: d["target_groups"][0]["targets"].append({"id": "127.0.0.1", "port": 9001}),
     "target_groups[0]: targets[1] registers 127.0.0.1:9001 twice"),
    (lambda d: d["target_groups"][0]["targets"].append({"id": "no such host!", "port": 9001}),
     "target_groups[0].targets[1].id: target id must be an IP address or a host name, not 'no such host!'"),
    (lambda d: d["target_groups"][0].update(attributes={"deregistration_delay.timeout_seconds": 4000}),
     "deregistration_delay.timeout_seconds must be between 0 and 3600, not 4000"),
    (lambda d: d.update(load_balancer={"attributes": {"albatross.shutdown.timeout_seconds": -1}}),
     "albatross.shutdown.timeout_seconds must be between 0 and 3600, not -1"),
    (lambda d: d.update(load_balancer={"attributes": {"access_logs.file.enable": True}}),
     "unknown or unsupported load balancer attribute 'access_logs.file.enable' (did you mean 'access_logs.file.enabled'?)"),
])
def test_target_group_and_admin_mistakes_are_located(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert expected in error(tmp_path, with_(change))


def test_the_full_example_checks_with_its_generated_certificates(tmp_path: Path) -> None:
    """examples/config-example.yaml (the format's reference example) passes `albatross check`
    once `make example-certs` (examples/make_certs.py) has made its files."""
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "examples" / "config-example.yaml", tmp_path / "config-example.yaml")
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_certs.py"), str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    for name in ("site-rsa.pem", "site-ecdsa.key", "api.pem", "site-rsa.ocsp.der", "ca.pem"):
        assert (tmp_path / "certs" / name).stat().st_size > 0
    done = subprocess.run([sys.executable, "-m", "albatross", "check", str(tmp_path / "config-example.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("config-example.yaml: OK")
    assert "forward to api-blue (weight 90), api-green (weight 10)" in done.stdout
    # Without the generated files the check names what is missing, and where.
    shutil.rmtree(tmp_path / "certs")
    failed = subprocess.run([sys.executable, "-m", "albatross", "check", str(tmp_path / "config-example.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and "listeners[1].certificates" in failed.stderr

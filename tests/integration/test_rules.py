"""Listener rules end to end: conditions, priorities, the default rule, redirect, fixed-response,
weighted forwarding (`albatross serve CONFIG` with real targets and real clients)."""

from __future__ import annotations

import math
import random
import ssl
from pathlib import Path

import httpx
import pytest
import yaml

from albatross.proxy.app import ForwardAction
from albatross.proxy.forward import TargetGroupRuntime
from tests.helpers import Albatross, connect, read_until_closed
from tests.integration.test_proxy import TargetProcess, free_port


@pytest.fixture(scope="module")
def targets():  # type: ignore[no-untyped-def]
    procs = {name: TargetProcess(name) for name in ("web", "api", "canary")}
    yield procs
    for p in procs.values():
        p.stop()


def rule(priority: int, conditions: list[dict], action: dict) -> dict:  # type: ignore[type-arg]
    return {"priority": priority, "conditions": conditions, "actions": [action]}


def forward(group: str) -> dict:  # type: ignore[type-arg]
    return {"type": "forward", "target_group_name": group}


@pytest.fixture(scope="module")
def lb(targets, site_rsa, tmp_path_factory):  # type: ignore[no-untyped-def]
    https_port, http_port = free_port(), free_port()
    rules = [
        rule(10, [{"field": "path-pattern", "path_pattern_config": {"values": ["/api/*"]}},
                  {"field": "http-request-method", "http_request_method_config": {"values": ["GET", "POST"]}}],
             forward("api")),
        rule(20, [{"field": "host-header", "host_header_config": {"values": ["static.*.example.com"]}}],
             {"type": "fixed-response", "fixed_response_config": {
                 "status_code": "404", "content_type": "text/plain", "message_body": "no static content here"}}),
        rule(30, [{"field": "http-header", "http_header_config": {"http_header_name": "X-Canary", "values": ["yes"]}},
                  {"field": "source-ip", "source_ip_config": {"values": ["127.0.0.0/8", "::1/128"]}},
                  {"field": "query-string", "query_string_config": {"values": [{"key": "debug", "value": "1"}]}}],
             forward("canary")),
        rule(5, [{"field": "path-pattern", "path_pattern_config": {"values": ["/api/admin*"]}}],
             {"type": "fixed-response", "fixed_response_config": {"status_code": "403", "message_body": "no"}}),
        rule(40, [{"field": "source-ip", "source_ip_config": {"values": ["10.0.0.0/8"]}}], forward("canary")),
    ]
    config = {
        "listeners": [
            {"protocol": "HTTPS", "port": https_port, "address": "127.0.0.1",
             "certificates": [{"certificate": str(site_rsa.cert), "private_key": str(site_rsa.key)}],
             "default_actions": [forward("web")], "rules": rules},
            {"protocol": "HTTP", "port": http_port, "address": "127.0.0.1",
             "default_actions": [{"type": "redirect", "redirect_config": {
                 "protocol": "HTTPS", "port": str(https_port), "host": "#{host}", "path": "/#{path}",
                 "query": "#{query}", "status_code": "HTTP_301"}}]},
        ],
        "target_groups": [{"name": n, "targets": [{"id": "127.0.0.1", "port": t.port}]} for n, t in targets.items()],
    }
    path = tmp_path_factory.mktemp("rules") / "albatross.yaml"
    path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(path), listeners=2) as proc:
        yield proc


def get(lb: Albatross, path: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    method = kw.pop("method", "GET")
    with httpx.Client(verify=ctx, http2=kw.pop("http2", False)) as c:
        return c.request(method, f"https://127.0.0.1:{lb.port}{path}", **kw)


def test_path_and_method_conditions_and_the_default_rule(lb: Albatross) -> None:
    assert get(lb, "/api/users").headers["x-target"] == "api"
    assert get(lb, "/api/users", method="POST", content=b"x").headers["x-target"] == "api"
    assert get(lb, "/api/users", method="DELETE").headers["x-target"] == "web"  # method not listed
    assert get(lb, "/API/users").headers["x-target"] == "web"  # paths are case-sensitive
    assert get(lb, "/other").headers["x-target"] == "web"  # the default rule


def test_lower_priority_number_wins(lb: Albatross) -> None:
    r = get(lb, "/api/admin/settings")
    assert r.status_code == 403 and r.text == "no"


def test_host_header_wildcard_and_fixed_response(lb: Albatross) -> None:
    r = get(lb, "/x", headers={"Host": "STATIC.eu.example.com"}, http2=True)
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/plain" and r.text == "no static content here"
    assert r.headers["server"] == "albatross"
    assert get(lb, "/x", headers={"Host": "static.example.com"}).headers["x-target"] == "web"


def test_all_conditions_of_a_rule_must_match(lb: Albatross) -> None:
    assert get(lb, "/p?debug=1", headers={"X-Canary": "YES"}).headers["x-target"] == "canary"
    assert get(lb, "/p?debug=2", headers={"X-Canary": "yes"}).headers["x-target"] == "web"
    assert get(lb, "/p?debug=1").headers["x-target"] == "web"
    assert get(lb, "/p?a=b&debug=%31", headers={"X-Canary": "yes"}).headers["x-target"] == "canary"  # URL-decoded


def test_source_ip_is_the_peer_not_x_forwarded_for(lb: Albatross) -> None:
    r = get(lb, "/p", headers={"X-Forwarded-For": "10.1.2.3"})
    assert r.headers["x-target"] == "web"


def test_http_listener_redirects_to_https_with_albs_placeholders(lb: Albatross) -> None:
    http_port = [p for s, p in lb.listening if s == "http"][0]
    with connect(http_port) as sock:
        sock.sendall(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    assert f"Location: https://shop.example.com:{lb.port}/a/b?x=1&y=2\r\n".encode() in data


def test_weighted_forwarding_passes_a_binomial_test() -> None:
    """10,000 choices among weights 90/10: the count of the light group is binomial(10000, 0.1)."""
    a, b = TargetGroupRuntime("a"), TargetGroupRuntime("b")
    action = ForwardAction([a, b], [90, 10])
    random.seed()
    n = 10_000
    light = sum(action.choose() is b for _ in range(n))
    # Two-sided p-value by the normal approximation (n*p = 1000: accurate far beyond 1e-3).
    mean, sd = n * 0.1, math.sqrt(n * 0.1 * 0.9)
    p_value = math.erfc(abs(light - mean) / sd / math.sqrt(2))
    assert p_value > 0.001, (light, p_value)
    assert ForwardAction([a, b], [1, 0]).choose() is a
    assert ForwardAction([a, b], [0, 0]).choose() is None


def test_weighted_forwarding_end_to_end(targets, site_rsa, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    config = {
        "listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1", "default_actions": [
            {"type": "forward", "forward_config": {"target_groups": [
                {"target_group_name": "web", "weight": 1}, {"target_group_name": "api", "weight": 1},
                {"target_group_name": "canary", "weight": 0}]}}]}],
        "target_groups": [{"name": n, "targets": [{"id": "127.0.0.1", "port": t.port}]} for n, t in targets.items()],
    }
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(path)) as _proc, httpx.Client() as c:
        seen = [c.get(f"http://127.0.0.1:{port}/").headers["x-target"] for _ in range(200)]
    assert "canary" not in seen
    assert 60 < seen.count("web") < 140  # p < 1e-8 outside this band for a fair coin



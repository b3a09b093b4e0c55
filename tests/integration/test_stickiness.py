"""lb_cookie stickiness: AWSALB / AWSALBCORS keep a client on its target, and move it when the
target turns unhealthy."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import Albatross
from tests.integration.test_proxy import TargetProcess, free_port


@pytest.fixture()
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    targets = [TargetProcess("s1"), TargetProcess("s2")]
    port = free_port()
    config = {
        "listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1",
                       "default_actions": [{"type": "forward", "target_group_name": "g"}]}],
        "target_groups": [{
            "name": "g", "health_check_path": "/healthz", "health_check_interval_seconds": 5,
            "health_check_timeout_seconds": 2, "healthy_threshold_count": 2, "unhealthy_threshold_count": 2,
            "attributes": {"stickiness.enabled": True, "stickiness.type": "lb_cookie",
                           "stickiness.lb_cookie.duration_seconds": 3600},
            "targets": [{"id": "127.0.0.1", "port": t.port} for t in targets]}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(path)) as lb:
        yield lb, port, {t.name: t for t in targets}
    for t in targets:
        t.stop()


def test_cookie_keeps_the_client_on_its_target_and_moves_it_when_unhealthy(setup) -> None:  # type: ignore[no-untyped-def]
    lb, port, targets = setup
    with httpx.Client() as sticky:
        first = sticky.get(f"http://127.0.0.1:{port}/echo")
        assert "AWSALB=" in first.headers["set-cookie"]
        cookies = first.headers.get_list("set-cookie")
        assert any(c.startswith("AWSALBCORS=") and "SameSite=None; Secure" in c for c in cookies)
        home = first.headers["x-target"]
        assert {sticky.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(10)} == {home}
    # Without the cookie, requests spread over both targets.
    assert len({httpx.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(10)}) == 2
    # A forged cookie is ignored (a new binding is issued).
    r = httpx.get(f"http://127.0.0.1:{port}/echo", headers={"Cookie": "AWSALB=forged"})
    assert r.status_code == 200 and "AWSALB=" in r.headers["set-cookie"]
    # The home target fails its health checks: the client moves, and gets a new cookie.
    with httpx.Client() as sticky:
        sticky.cookies.set("AWSALB", first.cookies["AWSALB"])
        httpx.get(f"http://127.0.0.1:{targets[home].port}/set-health/fail")
        deadline = time.monotonic() + 25
        while sticky.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] == home:
            assert time.monotonic() < deadline, "client never moved off the unhealthy target"
            time.sleep(0.3)
        other = sticky.get(f"http://127.0.0.1:{port}/echo").headers["x-target"]
        assert other != home
        assert {sticky.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(5)} == {other}


def _serve(tmp_path: Path, config: dict) -> Albatross:  # type: ignore[type-arg]
    path = tmp_path / "sticky.yaml"
    path.write_text(yaml.safe_dump(config))
    return Albatross(serve=str(path))


def test_app_cookie_binds_the_client_once_the_application_sets_its_cookie(tmp_path: Path) -> None:
    targets = [TargetProcess("a1"), TargetProcess("a2")]
    port = free_port()
    config = {
        "listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1",
                       "default_actions": [{"type": "forward", "target_group_name": "app"}]}],
        "target_groups": [{
            "name": "app", "health_check_path": "/healthz", "health_check_interval_seconds": 5,
            "health_check_timeout_seconds": 2, "healthy_threshold_count": 2, "unhealthy_threshold_count": 2,
            "attributes": {"stickiness.enabled": True, "stickiness.type": "app_cookie",
                           "stickiness.app_cookie.cookie_name": "SESSION",
                           "stickiness.app_cookie.duration_seconds": 3600},
            "targets": [{"id": "127.0.0.1", "port": t.port} for t in targets]}],
    }
    url = f"http://127.0.0.1:{port}"
    try:
        with _serve(tmp_path, config) as lb:
            lb.wait_for_log(r"is healthy(?:.*\n)+.*is healthy", timeout=15)
            # No application cookie in the response: no binding.
            plain = httpx.get(f"{url}/echo")
            assert "set-cookie" not in plain.headers
            with httpx.Client() as client:
                first = client.get(f"{url}/set-cookie/SESSION=abc123")
                cookies = first.headers.get_list("set-cookie")
                # The application's cookie passes untouched; ALB's four shards follow.
                assert "SESSION=abc123; Path=/; HttpOnly" in cookies
                shards = {c.split("=", 1)[0]: c for c in cookies if c.startswith("AWSALBAPP-")}
                assert sorted(shards) == ["AWSALBAPP-0", "AWSALBAPP-1", "AWSALBAPP-2", "AWSALBAPP-3"]
                assert all(shards[f"AWSALBAPP-{n}"].startswith(f"AWSALBAPP-{n}=_remove_;") for n in (1, 2, 3))
                assert "SameSite" not in shards["AWSALBAPP-0"]  # only for Chromium 80+ user agents
                home = first.headers["x-target"]
                assert {client.get(f"{url}/echo").headers["x-target"] for _ in range(10)} == {home}
                # Chromium 80 and later get SameSite=None; Secure, as from ALB.
                chrome = httpx.get(f"{url}/set-cookie/SESSION=abc123", headers={
                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"})
                assert all("SameSite=None; Secure" in c for c in chrome.headers.get_list("set-cookie")
                           if c.startswith("AWSALBAPP-"))
                # The home target fails: the session moves, and the binding is re-issued at once.
                other = next(t for t in targets if t.name != home)
                httpx.get(f"http://127.0.0.1:{next(t for t in targets if t.name == home).port}/set-health/fail")
                deadline = time.monotonic() + 25
                while (r := client.get(f"{url}/echo")).headers["x-target"] == home:
                    assert time.monotonic() < deadline, "session never moved off the unhealthy target"
                    time.sleep(0.3)
                assert r.headers["x-target"] == other.name
                assert any(c.startswith("AWSALBAPP-0=") for c in r.headers.get_list("set-cookie"))
                assert {client.get(f"{url}/echo").headers["x-target"] for _ in range(5)} == {other.name}
    finally:
        for t in targets:
            t.stop()


def test_target_group_stickiness_keeps_a_client_on_its_weighted_group(tmp_path: Path) -> None:
    targets = [TargetProcess("blue"), TargetProcess("green")]
    port = free_port()
    config = {
        "listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1", "default_actions": [{
            "type": "forward", "forward_config": {
                "target_groups": [{"target_group_name": "blue", "weight": 50},
                                  {"target_group_name": "green", "weight": 50}],
                "target_group_stickiness_config": {"enabled": True, "duration_seconds": 3600}}}]}],
        "target_groups": [{"name": t.name, "health_check_enabled": False,
                           "targets": [{"id": "127.0.0.1", "port": t.port}]} for t in targets],
    }
    url = f"http://127.0.0.1:{port}/echo"
    try:
        with _serve(tmp_path, config):
            with httpx.Client() as client:
                first = client.get(url)
                cookies = first.headers.get_list("set-cookie")
                assert any(c.startswith("AWSALBTG=") and "Path=/" in c for c in cookies)
                assert any(c.startswith("AWSALBTGCORS=") and "SameSite=None; Secure" in c for c in cookies)
                group = first.headers["x-target"]
                assert {client.get(url).headers["x-target"] for _ in range(20)} == {group}
            # Without the cookie (or with a forged one) the weights decide: both groups serve.
            assert {httpx.get(url).headers["x-target"] for _ in range(30)} == {"blue", "green"}
            forged = {httpx.get(url, headers={"Cookie": "AWSALBTG=forged"}).headers["x-target"] for _ in range(30)}
            assert forged == {"blue", "green"}
    finally:
        for t in targets:
            t.stop()

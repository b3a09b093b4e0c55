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

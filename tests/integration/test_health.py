"""Health checks end to end: ALB's probe, thresholds, recovery and fail-open, with real targets."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import Albatross
from tests.integration.test_proxy import TargetProcess, free_port

INTERVAL, THRESHOLD = 5, 2  # ALB's minimums, enforced by the configuration


@pytest.fixture()
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    targets = [TargetProcess("h1"), TargetProcess("h2")]
    port = free_port()
    config = {
        "listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1",
                       "default_actions": [{"type": "forward", "target_group_name": "g"}]}],
        "target_groups": [{
            "name": "g", "health_check_path": "/healthz", "health_check_interval_seconds": INTERVAL,
            "health_check_timeout_seconds": 2, "healthy_threshold_count": THRESHOLD,
            "unhealthy_threshold_count": THRESHOLD, "matcher": {"http_code": "200-299"},
            "targets": [{"id": "127.0.0.1", "port": t.port} for t in targets]}],
    }
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(path)) as lb:
        yield lb, port, targets
    for t in targets:
        t.stop()


def served_by(port: int, n: int = 10) -> list[str]:
    with httpx.Client() as c:
        return [c.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(n)]


def control(target: TargetProcess, state: str) -> None:
    httpx.get(f"http://127.0.0.1:{target.port}/set-health/{state}")


def wait_until(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.2)
    return time.monotonic() - started


def test_probe_is_albs_and_a_failing_target_leaves_and_returns(setup) -> None:  # type: ignore[no-untyped-def]
    lb, port, (h1, h2) = setup
    h1.wait_for("request /healthz ELB-HealthChecker/2.0")  # the first check runs at start, as ALB's
    assert set(served_by(port)) == {"h1", "h2"}
    control(h1, "fail")
    # Out of service within interval x threshold (+ one interval of phase, + slack).
    waited = wait_until(lambda: set(served_by(port)) == {"h2"}, INTERVAL * (THRESHOLD + 1) + 5)
    assert waited <= INTERVAL * (THRESHOLD + 1) + 5
    lb.wait_for_log(r"target 127\.0\.0\.1:\d+ is unhealthy \(Target\.ResponseCodeMismatch\)")
    control(h1, "ok")
    wait_until(lambda: "h1" in served_by(port), INTERVAL * (THRESHOLD + 1) + 5)
    lb.wait_for_log(r"target 127\.0\.0\.1:\d+ is healthy")


def test_every_target_failing_means_fail_open(setup) -> None:  # type: ignore[no-untyped-def]
    lb, port, (h1, h2) = setup
    control(h1, "fail")
    control(h2, "fail")
    lb.wait_for_log(r"is unhealthy.*\n(?:.*\n)*.*is unhealthy", timeout=INTERVAL * (THRESHOLD + 1) + 5)
    # ALB fails open: with no healthy target, traffic goes to all of them.
    assert set(served_by(port, 20)) == {"h1", "h2"}

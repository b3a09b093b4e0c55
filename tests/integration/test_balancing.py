"""Target choice end to end: least outstanding requests, and targets registered by host name."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import yaml

from tests.helpers import Albatross
from tests.integration.test_proxy import TargetProcess, free_port


def serve(tmp_path: Path, group: dict, admin: int | None = None) -> tuple[Path, int]:  # type: ignore[type-arg]
    port = free_port()
    config: dict = {"listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1",  # type: ignore[type-arg]
                                   "default_actions": [{"type": "forward", "target_group_name": group["name"]}]}],
                    "target_groups": [group]}
    if admin is not None:
        config["admin"] = {"port": admin}
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, port


def test_least_outstanding_requests_prefers_the_idle_target(tmp_path: Path) -> None:
    targets = [TargetProcess("t1"), TargetProcess("t2")]
    path, port = serve(tmp_path, {
        "name": "lor", "health_check_enabled": False,
        "attributes": {"load_balancing.algorithm.type": "least_outstanding_requests"},
        "targets": [{"id": "127.0.0.1", "port": t.port} for t in targets]})
    try:
        with Albatross(serve=str(path)):
            result: list[httpx.Response] = []
            busy = threading.Thread(target=lambda: result.append(
                httpx.get(f"http://127.0.0.1:{port}/slow/4000", timeout=30)))
            busy.start()
            waiting = _first_to_report(targets, "request /slow/4000")
            idle = next(t for t in targets if t is not waiting)
            # While one target holds a request, every new one goes to the other (round robin
            # would send every second request to the busy target).
            with httpx.Client() as c:
                seen = [c.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(10)]
            assert seen == [idle.name] * 10
            busy.join(30)
            assert result and result[0].headers["x-target"] == waiting.name
            # Both idle again: both take requests.
            with httpx.Client() as c:
                seen = [c.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] for _ in range(10)]
            assert set(seen) == {"t1", "t2"}
    finally:
        for t in targets:
            t.stop()


def _first_to_report(targets: list[TargetProcess], text: str) -> TargetProcess:
    """The target that received ``text`` (waits until one of them has)."""
    for _ in range(100):
        for t in targets:
            try:
                t.wait_for(text, timeout=0.1)
                return t
            except AssertionError:
                continue
    raise AssertionError(f"no target reported {text!r}")


def test_a_target_registered_by_host_name_is_resolved(tmp_path: Path) -> None:
    target = TargetProcess("named")
    admin = free_port()
    path, port = serve(tmp_path, {
        "name": "named", "health_check_path": "/healthz", "health_check_interval_seconds": 5,
        "health_check_timeout_seconds": 2, "healthy_threshold_count": 2,
        "targets": [{"id": "localhost", "port": target.port}]}, admin=admin)
    try:
        with Albatross(serve=str(path), listeners=2) as lb:
            lb.wait_for_log(rf"target 127\.0\.0\.1:{target.port} is healthy")
            assert httpx.get(f"http://127.0.0.1:{port}/echo").headers["x-target"] == "named"
            done = subprocess.run([sys.executable, "-m", "albatross", "targets", "--json", str(path)],
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            described = json.loads(done.stdout)["target_groups"][0]["target_health_descriptions"]
            by_address = {d["target"]["address"]: d for d in described}
            assert by_address["127.0.0.1"]["target"]["id"] == "localhost"
            assert by_address["127.0.0.1"]["target_health"]["state"] == "healthy"
            table = subprocess.run([sys.executable, "-m", "albatross", "targets", str(path)],
                                   capture_output=True, text=True, timeout=30).stdout
            assert "localhost (127.0.0.1)" in table
    finally:
        target.stop()

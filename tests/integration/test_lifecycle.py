"""Graceful stop: SIGTERM stops accepting at once and lets in-flight requests finish."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import httpx
import yaml

from tests.helpers import Albatross
from tests.integration.test_proxy import TargetProcess, free_port


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path) -> None:
    target = TargetProcess("slow")
    port = free_port()
    config = {"listeners": [{"protocol": "HTTP", "port": port, "address": "127.0.0.1",
                             "default_actions": [{"type": "forward", "target_group_name": "g"}]}],
              "target_groups": [{"name": "g", "health_check_enabled": False,
                                 "targets": [{"id": "127.0.0.1", "port": target.port}]}]}
    path = tmp_path / "l.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        with Albatross(serve=str(path)) as lb:
            result: list[httpx.Response] = []
            request = threading.Thread(
                target=lambda: result.append(httpx.get(f"http://127.0.0.1:{port}/slow/1500", timeout=30)))
            request.start()
            target.wait_for("request /slow/1500")  # the request is in flight at the target
            lb.proc.send_signal(signal.SIGTERM)
            lb.wait_for_log(r"stopping: no new connections")
            refused = False
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except OSError:
                refused = True
            assert refused, "still accepting connections after SIGTERM"
            request.join(20)
            assert result and result[0].status_code == 200  # the in-flight request completed
            assert lb.proc.wait(20) == 0
            lb.wait_for_log(r"stopped")
    finally:
        target.stop()

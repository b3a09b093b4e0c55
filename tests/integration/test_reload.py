"""Live reload, draining, the admin endpoint and `albatross targets`, end to end.

Each test runs `albatross serve CONFIG` with real target processes, rewrites the file and
reloads through `albatross reload` (the admin endpoint) or SIGHUP, and checks what clients,
targets and `albatross targets` see.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import Albatross, run
from tests.integration.test_proxy import TargetProcess, free_port


class Setup:
    """A configuration file that tests rewrite, and the balancer serving it."""

    def __init__(self, tmp_path: Path, targets: list[TargetProcess], **group: object) -> None:
        self.path = tmp_path / "albatross.yaml"
        self.port = free_port()
        self.admin = free_port()
        self.targets = targets
        self.group = {"name": "g", "health_check_enabled": False, **group}
        self.write([targets[0]])

    def config(self, members: list[TargetProcess], *, rules: list[dict] | None = None,  # type: ignore[type-arg]
               extra_listeners: list[dict] | None = None, port: int | None = None) -> dict:  # type: ignore[type-arg]
        listener = {"protocol": "HTTP", "port": port or self.port, "address": "127.0.0.1",
                    "default_actions": [{"type": "forward", "target_group_name": "g"}], "rules": rules or []}
        return {"admin": {"address": "127.0.0.1", "port": self.admin},
                "listeners": [listener, *(extra_listeners or [])],
                "target_groups": [{**self.group, "targets": [{"id": "127.0.0.1", "port": t.port} for t in members]}]}

    def write(self, members: list[TargetProcess], **kw: object) -> None:
        self.path.write_text(yaml.safe_dump(self.config(members, **kw)))  # type: ignore[arg-type]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "albatross", *args, str(self.path)], capture_output=True,
                              text=True, timeout=60)

    def reload(self) -> str:
        done = self.cli("reload")
        assert done.returncode == 0, done.stderr
        return done.stdout

    def targets_json(self) -> dict:  # type: ignore[type-arg]
        done = self.cli("targets", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def states(document: dict) -> dict[int, tuple[str, str | None]]:  # type: ignore[type-arg]
    return {d["target"]["port"]: (d["target_health"]["state"], d["target_health"].get("reason"))
            for g in document["target_groups"] for d in g["target_health_descriptions"]}


def deregister_during(s: Setup, target: TargetProcess, path: str,
                      keep: list[TargetProcess]) -> tuple[threading.Thread, list[httpx.Response]]:
    """Start a request for ``path`` (served by ``target``), then reload with only ``keep``
    registered, so that ``target`` drains with the request in flight."""
    result: list[httpx.Response] = []
    request = threading.Thread(target=lambda: result.append(httpx.get(s.url(path), timeout=30)))
    request.start()
    target.wait_for(f"request {path}")
    s.write(keep)
    s.reload()
    return request, result


@pytest.fixture()
def procs():  # type: ignore[no-untyped-def]
    started = [TargetProcess("t1"), TargetProcess("t2")]
    yield started
    for t in started:
        t.stop()


def test_reload_under_continuous_load_loses_no_request(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, t2 = procs
    s = Setup(tmp_path, procs)
    with Albatross(serve=str(s.path), listeners=2):
        stop = threading.Event()
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()

        def load(keep_alive: bool) -> None:
            client = httpx.Client(timeout=10) if keep_alive else None
            while not stop.is_set():
                try:
                    r = (client.get(s.url("/echo")) if client else httpx.get(s.url("/echo"), timeout=10))
                    key = f"{r.status_code} {r.headers.get('x-target', '-')}"
                except httpx.HTTPError as exc:
                    key = f"error {exc!r}"
                with lock:
                    outcomes[key] += 1
            if client:
                client.close()

        workers = [threading.Thread(target=load, args=(k,)) for k in (True, True, False, False)]
        for w in workers:
            w.start()
        try:
            # Alternate t1 -> t2 -> both -> t1 -> fixed rule, with requests flowing all along.
            for members, rules in (([t2], None), ([t1, t2], None), ([t1], None),
                                   ([t1], [{"priority": 1, "conditions": [
                                       {"field": "path-pattern", "path_pattern_config": {"values": ["/echo"]}}],
                                       "actions": [{"type": "fixed-response", "fixed_response_config": {
                                           "status_code": "200", "message_body": "fixed"}}]}])):
                s.write(members, rules=rules)
                before = sum(outcomes.values())
                assert "is serving" in s.reload()
                deadline = time.monotonic() + 5
                while sum(outcomes.values()) < before + 20 and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            stop.set()
            for w in workers:
                w.join(20)
    errors = {k: v for k, v in outcomes.items() if not k.startswith("200 ")}
    assert not errors, f"requests failed during reloads: {errors} of {sum(outcomes.values())}"
    assert outcomes["200 t1"] and outcomes["200 t2"] and outcomes["200 -"]  # every configuration served
    assert sum(outcomes.values()) > 100


def test_sighup_reloads_and_a_broken_config_keeps_the_old_one(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, t2 = procs
    s = Setup(tmp_path, procs)
    with Albatross(serve=str(s.path), listeners=2) as lb:
        assert httpx.get(s.url("/echo")).headers["x-target"] == "t1"
        good = s.path.read_text()
        # A mistake deep inside: the error names the file, the place and the reason.
        broken = s.config([t2])
        broken["target_groups"][0]["health_check_interval_secs"] = 10
        s.path.write_text(yaml.safe_dump(broken))
        done = s.cli("reload")
        assert done.returncode == 1
        assert str(s.path) in done.stderr
        assert "target_groups[0].health_check_interval_secs" in done.stderr
        assert "health_check_interval_seconds" in done.stderr  # the "did you mean" hint
        assert "configuration 1 keeps serving" in done.stderr
        assert httpx.get(s.url("/echo")).headers["x-target"] == "t1"
        lb.proc.send_signal(signal.SIGHUP)
        lb.wait_for_log(r"reload failed, configuration 1 keeps serving: .*health_check_interval_secs")
        assert httpx.get(s.url("/echo")).headers["x-target"] == "t1"
        identity = httpx.get(f"http://127.0.0.1:{s.admin}/config").json()
        assert identity["generation"] == 1 and identity["last_reload"]["ok"] is False
        assert identity["sha256"] == hashlib.sha256(good.encode()).hexdigest()
        # Fixed, and reloaded by signal.
        s.write([t2])
        lb.proc.send_signal(signal.SIGHUP)
        lb.wait_for_log(r"reload: configuration 2 is serving")
        assert httpx.get(s.url("/echo")).headers["x-target"] == "t2"
        identity = httpx.get(f"http://127.0.0.1:{s.admin}/config").json()
        assert identity["generation"] == 2 and identity["sha256"] == hashlib.sha256(s.path.read_bytes()).hexdigest()


def test_reload_that_cannot_listen_keeps_the_old_config(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, _ = procs
    s = Setup(tmp_path, procs)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    try:
        with Albatross(serve=str(s.path), listeners=2):
            extra = {"protocol": "HTTP", "port": busy, "address": "127.0.0.1",
                     "default_actions": [{"type": "forward", "target_group_name": "g"}]}
            s.write([t1], extra_listeners=[extra])
            done = s.cli("reload")
            assert done.returncode == 1
            assert f"cannot listen on 127.0.0.1:{busy}" in done.stderr
            assert httpx.get(s.url("/echo")).status_code == 200
    finally:
        taken.close()


def test_reload_moves_a_listener_and_the_old_port_stops_accepting(tmp_path: Path,
                                                                   procs: list[TargetProcess]) -> None:
    t1, _ = procs
    s = Setup(tmp_path, procs)
    with Albatross(serve=str(s.path), listeners=2) as lb:
        old = s.port
        new = free_port()
        s.write([t1], port=new)
        s.reload()
        lb.wait_for_log(rf"albatross: listening http 127\.0\.0\.1 {new}")
        assert httpx.get(f"http://127.0.0.1:{new}/echo").headers["x-target"] == "t1"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", old), timeout=2).close()


def test_draining_lets_the_in_flight_request_finish_and_takes_no_new_ones(
        tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, t2 = procs
    s = Setup(tmp_path, procs, attributes={"deregistration_delay.timeout_seconds": 30})
    with Albatross(serve=str(s.path), listeners=2) as lb:
        slow, result = deregister_during(s, t1, "/slow/3000", keep=[t2])
        # t1 is draining (ALB's state and reason) with its request in flight; new requests go to t2.
        drained = states(s.targets_json())
        assert drained[t1.port] == ("draining", "Target.DeregistrationInProgress")
        assert drained[t2.port][0] == "unavailable"  # health checks off in this group
        assert {httpx.get(s.url("/echo")).headers["x-target"] for _ in range(10)} == {"t2"}
        slow.join(30)
        assert result and result[0].status_code == 200 and result[0].headers["x-target"] == "t1"
        # No request left: deregistration completes at once (long before the 30 s delay), and,
        # as on ALB, the target reads draining until the delay ends.
        lb.wait_for_log(rf"target 127\.0\.0\.1:{t1.port} of g: deregistration complete", timeout=5)
        t1.wait_for("closed")  # its idle keep-alive connection was closed
        assert states(s.targets_json())[t1.port][0] == "draining"


def test_deregistration_delay_ends_what_is_still_in_flight(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, t2 = procs
    s = Setup(tmp_path, procs, attributes={"deregistration_delay.timeout_seconds": 1})
    with Albatross(serve=str(s.path), listeners=2) as lb:
        hang, result = deregister_during(s, t1, "/hang", keep=[t2])
        hang.join(15)
        assert result and result[0].status_code == 502  # cut when the delay ran out
        lb.wait_for_log(r"deregistration delay over, closing 1 in-flight requests")
        t1.wait_for("closed")  # the target saw its connection closed
        assert t1.port not in states(s.targets_json())  # gone once the delay has ended


def test_sigterm_deadline_cuts_requests_that_do_not_finish(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, _ = procs
    s = Setup(tmp_path, procs)
    config = s.config([t1])
    config["load_balancer"] = {"attributes": {"albatross.shutdown.timeout_seconds": 1}}
    s.path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(s.path), listeners=2) as lb:
        errors: list[Exception] = []

        def hang() -> None:
            try:
                httpx.get(s.url("/hang"), timeout=30)
            except httpx.HTTPError as exc:
                errors.append(exc)

        client = threading.Thread(target=hang)
        client.start()
        t1.wait_for("request /hang")
        started = time.monotonic()
        lb.proc.send_signal(signal.SIGTERM)
        assert lb.proc.wait(15) == 0
        assert time.monotonic() - started < 8  # one second of grace, not the request's hour
        client.join(10)
        assert errors  # the request was cut at the deadline


def test_targets_command_and_admin_endpoint(tmp_path: Path, procs: list[TargetProcess]) -> None:
    t1, t2 = procs
    s = Setup(tmp_path, procs)
    config = s.config([t1])
    config["target_groups"][0].update(health_check_enabled=True, health_check_path="/healthz",
                                      health_check_interval_seconds=5, health_check_timeout_seconds=2,
                                      healthy_threshold_count=2, unhealthy_threshold_count=2)
    # A second group no rule forwards to: ALB calls its targets unused, Target.NotInUse.
    config["target_groups"].append({"name": "spare", "targets": [{"id": "127.0.0.1", "port": t2.port}]})
    s.path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(s.path), listeners=2) as lb:
        lb.wait_for_log(rf"target 127\.0\.0\.1:{t1.port} is healthy")
        table = s.cli("targets")
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:5] == ["TARGET", "GROUP", "TARGET", "PORT", "HEALTH"]
        row = next(line for line in lines if line.startswith("g "))
        assert row.split()[1:5] == ["127.0.0.1", str(t1.port), str(t1.port), "healthy"]
        spare = next(line for line in lines if line.startswith("spare "))
        assert "unused" in spare and "Target.NotInUse" in spare and "not configured to receive traffic" in spare
        document = s.targets_json()
        assert [g["name"] for g in document["target_groups"]] == ["g", "spare"]
        assert states(document) == {t1.port: ("healthy", None), t2.port: ("unused", "Target.NotInUse")}
        admin = f"http://127.0.0.1:{s.admin}"
        assert httpx.get(f"{admin}/healthz").text == "ok\n"
        assert httpx.get(f"{admin}/nothing").status_code == 404
        assert httpx.get(f"{admin}/reload").status_code == 405
        # The admin endpoint is not a data-plane port, and a listener is not an admin endpoint.
        assert httpx.get(s.url("/targets")).headers.get("x-target") == "t1"
    done = subprocess.run([sys.executable, "-m", "albatross", "targets", "--admin", f"127.0.0.1:{s.admin}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and f"no admin endpoint at 127.0.0.1:{s.admin}" in done.stderr


def test_reload_applies_new_certificates_to_new_handshakes_and_tickets_still_resume(
        tmp_path: Path, procs: list[TargetProcess]) -> None:
    import trustme

    t1, _ = procs
    ca = trustme.CA()
    paths, leaf = {}, {}
    for name in ("one.example", "two.example"):
        cert = ca.issue_cert(name)
        leaf[name] = cert.cert_chain_pems[0].bytes().decode().strip()
        paths[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
        cert.private_key_and_cert_chain_pem.write_to_path(str(paths[name][0]))
        cert.private_key_pem.write_to_path(str(paths[name][1]))
    port = free_port()
    s = Setup(tmp_path, procs)

    def write(name: str) -> None:
        config = s.config([t1])
        config["listeners"].append({"protocol": "HTTPS", "port": port, "address": "127.0.0.1",
                                    "certificates": [{"certificate": str(paths[name][0]),
                                                      "private_key": str(paths[name][1])}],
                                    "default_actions": [{"type": "forward", "target_group_name": "g"}]})
        s.path.write_text(yaml.safe_dump(config))

    def handshake(*extra: str) -> tuple[str, str]:
        """(the server's leaf certificate as PEM, s_client's whole output)."""
        out = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", *extra],
                  input="", timeout=30).stdout
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        return (m.group(0) if m else ""), out

    write("one.example")
    session = tmp_path / "session.pem"
    with Albatross(serve=str(s.path), listeners=3):
        assert handshake("-sess_out", str(session))[0] == leaf["one.example"]
        with httpx.Client(verify=False) as kept:
            assert kept.get(f"https://127.0.0.1:{port}/echo").status_code == 200
            write("two.example")
            s.reload()
            # The open connection is not disturbed; a new handshake gets the new certificate.
            assert kept.get(f"https://127.0.0.1:{port}/echo").status_code == 200
            assert handshake()[0] == leaf["two.example"]
        # The ticket-key ring survived the reload: a ticket issued before it still resumes.
        assert "Reused, TLSv1.2" in handshake("-sess_in", str(session))[1]

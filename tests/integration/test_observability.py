"""Access log, connection log, metrics and the status page, end to end.

The access-log parser below is written from ALB's documented field list (the same field
order and quoting as AWS's Athena table for ALB access logs), not from Albatross's code.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Albatross, require_tool, run
from tests.integration.test_proxy import TargetProcess, closed_port, free_port

# ALB's access-log entry: 33 fields, space separated; quoted ones may hold spaces.
_Q = r'"([^"]*)"'
ALB_LINE = re.compile(" ".join([
    r"^(http|https|h2|grpcs|ws|wss)",  # 1 type
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)",  # 2 time
    r"(app/[^ /]+/[0-9a-f]+)",  # 3 elb
    r"([^ ]*):(\d+)",  # 4 client:port
    r"(-|[^ ]*:\d+)",  # 5 target:port
    r"(-1|\d+\.\d{3})", r"(-1|\d+\.\d{3})", r"(-1|\d+\.\d{3})",  # 6-8 processing times
    r"(-|\d{3})", r"(-|\d{3})",  # 9 elb_status_code, 10 target_status_code
    r"(\d+)", r"(\d+)",  # 11 received_bytes, 12 sent_bytes
    r'"([A-Z]+|-) ([^ ]+) (HTTP/[0-9.]+|-)"',  # 13 request
    _Q,  # 14 user_agent
    r"([A-Za-z0-9_-]+)", r"([A-Za-z0-9.-]+)",  # 15 ssl_cipher, 16 ssl_protocol
    r"([^ ]+)",  # 17 target_group_arn
    _Q, _Q, _Q,  # 18 trace_id, 19 domain_name, 20 chosen_cert_arn
    r"(-|-1|\d+)",  # 21 matched_rule_priority
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)",  # 22 request_creation_time
    _Q, _Q, _Q, _Q, _Q, _Q, _Q,  # 23 actions, 24 redirect_url, 25 error_reason, 26-27 lists, 28-29 classification
    r"(TID_[0-9a-f]+|-)",  # 30 conn_trace_id
    _Q, _Q, _Q,  # 31-33 transformed_host, transformed_uri, request_transform_status
]) + r"$")
FIELDS = ["type", "time", "elb", "client_ip", "client_port", "target", "request_processing_time",
          "target_processing_time", "response_processing_time", "elb_status_code", "target_status_code",
          "received_bytes", "sent_bytes", "request_verb", "request_url", "request_proto", "user_agent", "ssl_cipher",
          "ssl_protocol", "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
          "request_creation_time", "actions_executed", "redirect_url", "error_reason", "target_port_list",
          "target_status_code_list", "classification", "classification_reason", "conn_trace_id", "transformed_host",
          "transformed_uri", "request_transform_status"]

# ALB's connection-log entry (12 fields, then ours: tls_keyexchange, SNI, protocol, negotiated by, resumption).
CONNECTION_LINE = re.compile(
    r"^(\S+Z) (\S+) (\d+) (\d+) (\S+) (\S+) (\d+\.\d{3}) \"([^\"]*)\" (\S+) (\S+) (Success|Failed:\w+) (TID_[0-9a-f]+)"
    r" (\S+) (\S+) (\S+) (alpn|npn|-) (ticket|session_id|-)$")


def parse(line: str) -> dict[str, str]:
    m = ALB_LINE.match(line)
    assert m, f"not an ALB access-log line: {line!r}"
    return dict(zip(FIELDS, m.groups()))


def read_lines(path: Path, count: int, timeout: float = 10.0) -> list[str]:
    """Wait until ``path`` holds at least ``count`` lines (the writer thread flushes within ms)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, f"{path} has {len(lines)} lines, expected {count}: {lines}"
        time.sleep(0.05)


def metrics(admin: int) -> dict[tuple[str, frozenset], float]:  # type: ignore[type-arg]
    text = httpx.get(f"http://127.0.0.1:{admin}/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "load_balancer"}
            out[(sample.name, frozenset(labels.items()))] = sample.value
    return out


def value(table: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return table.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture()
def observed(tmp_path: Path, site_rsa):  # type: ignore[no-untyped-def]
    target = TargetProcess("obs")
    https, http, admin = free_port(), free_port(), free_port()
    forward = [{"type": "forward", "target_group_name": "web"}]
    rules = [
        {"priority": 5, "conditions": [{"field": "path-pattern", "path_pattern_config": {"values": ["/fixed"]}}],
         "actions": [{"type": "fixed-response", "fixed_response_config": {"status_code": "418",
                                                                          "message_body": "teapot"}}]},
        {"priority": 6, "conditions": [{"field": "path-pattern", "path_pattern_config": {"values": ["/old"]}}],
         "actions": [{"type": "redirect", "redirect_config": {"path": "/new", "status_code": "HTTP_301"}}]},
        {"priority": 7, "conditions": [{"field": "path-pattern", "path_pattern_config": {"values": ["/broken"]}}],
         "actions": [{"type": "forward", "target_group_name": "refused"}]},
    ]
    config = {
        "load_balancer": {"name": "observed", "attributes": {
            "access_logs.file.enabled": True, "access_logs.file.path": "logs/access.log",
            "connection_logs.file.enabled": True, "connection_logs.file.path": "logs/connection.log"}},
        "admin": {"port": admin},
        "listeners": [
            {"protocol": "HTTPS", "port": https, "address": "127.0.0.1", "rules": rules, "default_actions": forward,
             "certificates": [{"certificate": str(site_rsa.cert), "private_key": str(site_rsa.key)}],
             "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"},
            {"protocol": "HTTP", "port": http, "address": "127.0.0.1", "default_actions": forward},
        ],
        "target_groups": [
            {"name": "web", "health_check_path": "/healthz", "health_check_interval_seconds": 5,
             "health_check_timeout_seconds": 2, "healthy_threshold_count": 2,
             "targets": [{"id": "127.0.0.1", "port": target.port}]},
            {"name": "refused", "health_check_enabled": False, "targets": [{"id": "127.0.0.1", "port": closed_port()}]},
        ],
    }
    path = tmp_path / "observed.yaml"
    path.write_text(yaml.safe_dump(config))
    with Albatross(serve=str(path), listeners=3) as lb:
        lb.wait_for_log(r"is healthy")
        yield lb, {"https": https, "http": http, "admin": admin, "dir": tmp_path, "target": target,
                   "cert": site_rsa}
    target.stop()


def test_access_log_fields_are_albs(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    https, http = ports["https"], ports["http"]
    log = ports["dir"] / "logs" / "access.log"
    with httpx.Client(http2=True, verify=False) as c:
        c.get(f"https://127.0.0.1:{https}/echo?x=1", headers={"User-Agent": 'probe "quoted" agent'})
    with httpx.Client(verify=False) as c:
        c.get(f"https://127.0.0.1:{https}/fixed")
        c.get(f"https://127.0.0.1:{https}/old?q=2")
        c.get(f"https://127.0.0.1:{https}/broken")
    httpx.get(f"http://127.0.0.1:{http}/echo", headers={"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"})
    lines = [parse(line) for line in read_lines(log, 5)]
    h2, fixed, redirect, broken, plain = lines
    elb = h2["elb"]
    assert re.fullmatch(r"app/observed/[0-9a-f]{16}", elb) and all(r["elb"] == elb for r in lines)
    # An HTTP/2 request forwarded to the target.
    assert h2["type"] == "h2" and h2["client_ip"] == "127.0.0.1"
    assert h2["target"] == f"127.0.0.1:{ports['target'].port}"
    assert h2["elb_status_code"] == h2["target_status_code"] == "200"
    assert all(float(h2[k]) >= 0 for k in ("request_processing_time", "target_processing_time",
                                            "response_processing_time"))
    assert (h2["request_verb"], h2["request_url"], h2["request_proto"]) == (
        "GET", f"https://127.0.0.1:{https}/echo?x=1", "HTTP/2.0")
    assert h2["user_agent"] == r"probe \x22quoted\x22 agent"
    assert h2["ssl_protocol"] == "TLSv1.3" and h2["ssl_cipher"].startswith("TLS_")
    assert re.fullmatch(r"arn:albatross:elasticloadbalancing:local:000000000000:targetgroup/web/[0-9a-f]{16}",
                        h2["target_group_arn"])
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", h2["trace_id"])
    assert h2["chosen_cert_arn"].startswith("arn:albatross:acm:local:000000000000:certificate/")
    assert h2["matched_rule_priority"] == "0" and h2["actions_executed"] == "forward"
    assert h2["target_port_list"] == h2["target"] and h2["target_status_code_list"] == "200"
    assert h2["request_creation_time"] <= h2["time"]
    assert int(h2["received_bytes"]) > 0 and int(h2["sent_bytes"]) > 100
    assert re.fullmatch(r"TID_[0-9a-f]{32}", h2["conn_trace_id"])
    # Answered by the load balancer itself: no target, -1 times, the rule's priority.
    assert (fixed["elb_status_code"], fixed["target_status_code"], fixed["target"]) == ("418", "-", "-")
    assert fixed["request_processing_time"] == fixed["target_processing_time"] == "-1"
    assert (fixed["matched_rule_priority"], fixed["actions_executed"], fixed["type"]) == ("5", "fixed-response", "https")
    assert fixed["target_group_arn"] == "-" and fixed["trace_id"].startswith("Root=1-")
    assert fixed["conn_trace_id"] == redirect["conn_trace_id"] == broken["conn_trace_id"]  # one connection
    assert (redirect["elb_status_code"], redirect["actions_executed"]) == ("301", "redirect")
    assert redirect["redirect_url"] == f"https://127.0.0.1:{https}/new?q=2"
    # A refused target: 502 from the load balancer, the target it tried, no target status.
    assert (broken["elb_status_code"], broken["target_status_code"], broken["matched_rule_priority"]) == ("502", "-", "7")
    assert broken["target_group_arn"].endswith(f"targetgroup/refused/{broken['target_group_arn'][-16:]}")
    # Plain HTTP: no TLS fields; the client's trace id is continued with Self.
    assert (plain["type"], plain["ssl_cipher"], plain["ssl_protocol"], plain["domain_name"]) == ("http", "-", "-", "-")
    assert plain["chosen_cert_arn"] == "-"
    assert plain["trace_id"].startswith("Self=1-") and "Root=1-5759e988-bd862e3fe1be46a994272793" in plain["trace_id"]


def test_client_leaving_early_is_460(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    log = ports["dir"] / "logs" / "access.log"
    sock = socket.create_connection(("127.0.0.1", ports["http"]))
    sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    ports["target"].wait_for("request /hang")
    sock.close()
    entry = parse(read_lines(log, 1)[-1])
    assert entry["elb_status_code"] == "460" and entry["target_status_code"] == "-"
    assert entry["request_url"].endswith("/hang")


def test_access_log_reopens_on_sigusr1_and_after_rotation(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    log = ports["dir"] / "logs" / "access.log"
    url = f"http://127.0.0.1:{ports['http']}/echo"
    httpx.get(url + "?n=1")
    read_lines(log, 1)
    os.rename(log, log.with_suffix(".log.1"))
    lb.proc.send_signal(signal.SIGUSR1)
    # The signal is handled on the loop and the reopen in the writer thread: retry until a line lands.
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text()):
        assert time.monotonic() < deadline, "no new access.log after SIGUSR1"
        httpx.get(url + "?n=2")
        time.sleep(0.1)
    assert "?n=1" in log.with_suffix(".log.1").read_text()
    # Rotated away without a signal (copy-less logrotate): noticed within about a second.
    os.rename(log, log.with_suffix(".log.2"))
    deadline = time.monotonic() + 10
    while not (log.exists() and "?n=3" in log.read_text()):
        assert time.monotonic() < deadline, "access.log not recreated after rotation"
        httpx.get(url + "?n=3")
        time.sleep(0.2)


def test_graceful_stop_loses_no_log_line(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    log = ports["dir"] / "logs" / "access.log"
    with httpx.Client() as c:
        for n in range(300):
            assert c.get(f"http://127.0.0.1:{ports['http']}/echo?n={n}").status_code == 200
    lb.proc.send_signal(signal.SIGTERM)
    assert lb.proc.wait(20) == 0
    lines = log.read_text().splitlines()
    assert [parse(line)["request_url"].rsplit("=", 1)[1] for line in lines] == [str(n) for n in range(300)]


def test_connection_log_records_handshakes_and_failures(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    https = ports["https"]
    log = ports["dir"] / "logs" / "connection.log"
    with httpx.Client(verify=False) as c:
        c.get(f"https://127.0.0.1:{https}/echo")
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1_2", "-servername", "www.example.com",
         "-nextprotoneg", "h2,http/1.1"], input="", timeout=30)
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1"], input="", timeout=30)  # refused version
    with socket.create_connection(("127.0.0.1", https)) as s:  # plain HTTP on the TLS port
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
    entries = [CONNECTION_LINE.match(line) for line in read_lines(log, 4)]
    assert all(entries), read_lines(log, 4)
    ok, npn, old, plain = (m.groups() for m in entries)  # type: ignore[union-attr]
    assert ok[1:4] == ("127.0.0.1", ok[2], str(https)) and ok[4] == "TLSv1.3" and ok[10] == "Success"
    assert ok[7] == "-" and (ok[8], ok[9]) == ("-", "-")  # no client certificate fields
    assert (ok[14], ok[15]) == ("http/1.1", "alpn")
    assert (npn[4], npn[13], npn[14], npn[15]) == ("TLSv1.2", "www.example.com", "h2", "npn")
    assert old[10].startswith("Failed:") and old[4] == "-"
    assert plain[10] == "Failed:PlainHttpRequest"


def test_metrics_carry_albs_names(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    https, http, admin = ports["https"], ports["http"], ports["admin"]
    listener = f"https:{https}"
    with httpx.Client(verify=False) as c:
        for _ in range(3):
            c.get(f"https://127.0.0.1:{https}/echo")
        c.get(f"https://127.0.0.1:{https}/fixed")
        c.get(f"https://127.0.0.1:{https}/broken")
    httpx.get(f"http://127.0.0.1:{http}/echo")
    session = ports["dir"] / "s.pem"
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1_2", "-sess_out", str(session)], input="")
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1_2", "-sess_in", str(session)], input="")
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1_2", "-no_ticket", "-reconnect"], input="")
    run(["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-tls1"], input="")
    m = metrics(admin)
    assert value(m, "RequestCount_total", listener=listener, target_group="web") == 3
    assert value(m, "RequestCount_total", listener=listener, target_group="refused") == 1
    assert value(m, "RequestCount_total", listener=f"http:{http}", target_group="web") == 1
    assert value(m, "HTTPCode_ELB_4XX_Count_total", listener=listener) == 1  # the fixed 418
    assert value(m, "HTTPCode_ELB_5XX_Count_total", listener=listener) == 1
    assert value(m, "HTTPCode_ELB_502_Count_total", listener=listener) == 1
    assert value(m, "HTTP_Fixed_Response_Count_total", listener=listener) == 1
    assert value(m, "HTTPCode_Target_2XX_Count_total", target_group="web") == 4
    assert value(m, "TargetConnectionErrorCount_total", target_group="refused") == 1
    assert value(m, "TargetResponseTime_count", target_group="web") == 4
    assert value(m, "TargetResponseTime_bucket", target_group="web", le="+Inf") == 4
    assert value(m, "HealthyHostCount", target_group="web") == 1
    assert value(m, "UnHealthyHostCount", target_group="web") == 0
    assert value(m, "ClientTLSNegotiationErrorCount_total", listener=listener) == 1
    assert value(m, "ProcessedBytes_total", listener=listener) > 1000
    assert value(m, "NewConnectionCount_total", listener=listener) >= 8
    assert value(m, "TLSHandshakeCount_total", listener=listener, resumption="ticket") == 1
    assert value(m, "TLSHandshakeCount_total", listener=listener, resumption="session_id") >= 1
    assert value(m, "ApplicationProtocolCount_total", listener=listener, negotiated_by="alpn", protocol="http/1.1") >= 1
    assert value(m, "SessionTicketCount_total", outcome="resumed") >= 1
    # ActiveConnectionCount follows open connections.
    with socket.create_connection(("127.0.0.1", http)):
        deadline = time.monotonic() + 5
        while value(metrics(admin), "ActiveConnectionCount", listener=f"http:{http}") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_status_page_renders_targets_in_chromium(observed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    lb, ports, *_ = observed
    exe = require_tool("chromium")
    url = f"http://127.0.0.1:{ports['admin']}/"
    httpx.get(f"http://127.0.0.1:{ports['http']}/echo")
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
              "--virtual-time-budget=3000"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    rows = re.findall(r"<tr><td>(web|refused)</td><td>([^<]+)</td><td>(\d+)</td><td class=\"state (\w+)\">", dom)
    assert ("web", "127.0.0.1", str(ports["target"].port), "healthy") in rows, dom[-3000:]
    assert any(r[0] == "refused" and r[3] == "unavailable" for r in rows)
    assert f"https:{ports['https']}" in dom and "requests/s" in dom
    assert re.search(r"updated \S+.*configuration 1", dom)  # the script ran and redrew from status.json
    shot = tmp_path / "status.png"
    subprocess.run([*common, "--window-size=1000,700", f"--screenshot={shot}", url], capture_output=True,
                   timeout=120)
    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 100, "the screenshot is blank"
    assert sum(1 for count in image.histogram() if count) > 10  # text and colours, not one flat fill


def test_status_json_and_admin_is_not_a_listener(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    status = httpx.get(f"http://127.0.0.1:{ports['admin']}/status.json").json()
    assert sorted(l["listener"] for l in status["listeners"]) == sorted([f"https:{ports['https']}",
                                                                         f"http:{ports['http']}"])
    assert [g["name"] for g in status["target_groups"]] == ["web", "refused"]
    assert "admin" not in httpx.get(f"http://127.0.0.1:{ports['admin']}/metrics").text


def test_a_log_path_that_cannot_be_opened_fails_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = {"load_balancer": {"attributes": {"access_logs.file.enabled": True,
                                               "access_logs.file.path": str(blocker / "access.log")}},
              "listeners": [{"protocol": "HTTP", "port": free_port(), "address": "127.0.0.1",
                             "default_actions": [{"type": "fixed-response",
                                                  "fixed_response_config": {"status_code": "200"}}]}]}
    path = tmp_path / "bad-log.yaml"
    path.write_text(yaml.safe_dump(config))
    failed = Albatross(serve=str(path), expect_failure=True)
    assert failed.returncode == 2
    assert f"cannot open log file {blocker / 'access.log'}: " in failed.log


def answered_400(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")


def test_a_request_rejected_before_routing_is_logged_like_alb(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    log = ports["dir"] / "logs" / "access.log"
    answered_400(ports["http"], b"NOT A REQUEST\x00\r\n\r\n")
    entry = parse(read_lines(log, 1)[-1])
    assert (entry["request_verb"], entry["request_url"], entry["request_proto"]) == ("-", "-", "-")
    assert (entry["elb_status_code"], entry["target_status_code"], entry["matched_rule_priority"]) == ("400", "-", "-")
    assert entry["actions_executed"] == "-" and entry["target"] == "-"


def test_a_request_whose_body_is_malformed_is_logged_once(observed) -> None:  # type: ignore[no-untyped-def]
    lb, ports, *_ = observed
    log = ports["dir"] / "logs" / "access.log"
    answered_400(ports["http"], b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnot a chunk\r\n")
    # A request after it: its line follows the 400's directly (no second line for the bad one).
    httpx.get(f"http://127.0.0.1:{ports['http']}/echo?after")
    lines = [parse(line) for line in read_lines(log, 2)]
    assert [(e["elb_status_code"], e["request_verb"], e["request_url"]) for e in lines] == [
        ("400", "POST", f"http://x:{ports['http']}/echo"),
        ("200", "GET", f"http://127.0.0.1:{ports['http']}/echo?after")]

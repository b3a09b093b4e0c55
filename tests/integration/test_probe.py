"""``albatross probe`` against real servers on loopback: Albatross itself (the seed's claims,
row by row), Debian's nginx (the known differences), and servers that cannot be probed.

The probe runs as the real command (a child process); its table is parsed by the header's
column positions, and ``--json`` must carry the same rows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import Albatross, require_tool
from tests.integration.test_proxy import closed_port, free_port

Rows = list[tuple[str, str, str]]


def probe(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "albatross", "probe", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def parse_table(out: str) -> Rows:
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("CHECK "))
    r, d = lines[header].index("RESULT"), lines[header].index("DETAIL")
    return [(line[:r].rstrip(), line[r:d].rstrip(), line[d:]) for line in lines[header + 1:] if line]


def table_of(url: str, *args: str) -> dict[str, tuple[str, str]]:
    result = probe(url, *args)
    assert result.returncode == 0, result.stderr
    return {check: (res, detail) for check, res, detail in parse_table(result.stdout)}


# -- against `albatross demo` (ECDSA + RSA certificates, default policy) -----------------------------


@pytest.fixture(scope="module")
def demo(pki, site_rsa, site_ecdsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), *site_ecdsa.args()) as proc:
        yield proc


@pytest.fixture(scope="module")
def demo_run(demo: Albatross) -> subprocess.CompletedProcess[str]:
    return probe(f"https://127.0.0.1:{demo.port}", "--sni", "a.test")


@pytest.fixture(scope="module")
def rows(demo_run: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    assert demo_run.returncode == 0, demo_run.stderr
    return {check: (result, detail) for check, result, detail in parse_table(demo_run.stdout)}


def test_runs_cleanly(demo: Albatross, demo_run: subprocess.CompletedProcess[str]) -> None:
    assert demo_run.returncode == 0 and demo_run.stderr == ""
    assert demo_run.stdout.startswith(f"albatross probe https://127.0.0.1:{demo.port}/  "
                                      f"(127.0.0.1:{demo.port}, SNI a.test)\n")
    assert "Traceback" not in demo.log


def test_seed_row1_h2_wins_whatever_the_clients_order(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["ALPN h2"][0] == "h2"
    assert rows["ALPN http/1.1"][0] == "http/1.1"
    assert rows["ALPN http/1.1,h2"][0] == "h2"
    assert rows["ALPN h2,http/1.1"][0] == "h2"
    assert rows["ALPN preference"] == ("h2", "h2 chosen over http/1.1 whatever the client's order (server preference)")


def test_seed_row1_http2_settings_and_response(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["HTTP/2 MAX_CONCURRENT_STREAMS"][0] == "128"
    assert rows["HTTP/2 INITIAL_WINDOW_SIZE"][0] == "262144"
    assert rows["HTTP/2 MAX_HEADER_LIST_SIZE"][0] == "65536"
    assert rows["HTTP/2 MAX_FRAME_SIZE"] == ("not sent", "default 16384")
    assert rows["HTTP/2 HEAD /"] == ("200", "server: albatross")


def test_seed_row2_npn_advertises_h2_and_http11(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["NPN advertised"] == ("h2, http/1.1", "TLSv1.2, NPN offered without ALPN")
    assert rows["NPN negotiated"] == ("h2", "client selected h2 from the server's list")


def test_seed_row3_http11_keep_alive_without_alpn_or_npn(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["HTTP/1.1, no ALPN or NPN"] == ("HTTP/1.1 200 OK", "Connection: keep-alive; server: albatross")


def test_seed_row4_no_ocsp_staple_without_a_file(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["OCSP staple"] == ("absent", "status requested; no OCSP response sent")


def test_seed_row5_secure_renegotiation_advertised(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["secure renegotiation (RFC 5746)"] == ("advertised", "renegotiation_info answered (TLSv1.2)")


def test_seed_row6_default_policy_refuses_tls10_and_11(rows: dict[str, tuple[str, str]]) -> None:
    for label in ("TLS 1.0", "TLS 1.1", "TLS 1.0, 2018 client ciphers"):
        assert rows[label] == ("refused", "fatal protocol_version alert received")
    assert rows["TLS 1.2"] == ("accepted", "cipher ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rows["TLS 1.3"] == ("accepted", "cipher TLS_AES_128_GCM_SHA256")


def test_seed_row7_ticket_hint_and_resumption(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["session ticket, TLS 1.2"][0] == "issued, hint 43200 s"
    assert rows["resumption, TLS 1.2 ticket"] == ("reused", "resumed; the ticket was kept (no new ticket)")
    assert rows["resumption, TLS 1.2 session ID"][0] == "reused"
    assert rows["resumption, TLS 1.3"] == ("reused", "resumed (PSK); ticket lifetime 43200 s")


def test_seed_row8_client_renegotiation_refused_with_a_warning(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["client renegotiation"] == (
        "refused", "warning no_renegotiation alert received; fatal handshake_failure alert sent")


def test_seed_row9_false_start_preconditions_met(rows: dict[str, tuple[str, str]]) -> None:
    assert rows["False Start preconditions"] == (
        "yes", "ALPN negotiated h2; ECDHE-ECDSA-AES128-GCM-SHA256 is forward-secret (ECDHE) and AEAD (GCM)")


def test_certificate_ecdsa_first_rsa_for_clients_without_ecdsa(rows: dict[str, tuple[str, str]]) -> None:
    result, detail = rows["certificate"]
    assert result == "ECDSA P-256"
    assert "SAN a.test, localhost, 127.0.0.1" in detail and detail.endswith("SNI a.test")
    result, detail = rows["certificate, RSA-only client"]
    assert result == "RSA 2048" and detail.startswith("another certificate")
    assert rows["handshake"][0] == "TLSv1.3 TLS_AES_128_GCM_SHA256"


def test_json_has_the_same_rows_as_the_table(demo: Albatross, demo_run: subprocess.CompletedProcess[str]) -> None:
    result = probe(f"https://127.0.0.1:{demo.port}", "--sni", "a.test", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["target"] == {"host": "127.0.0.1", "port": demo.port, "path": "/",
                             "address": f"127.0.0.1:{demo.port}", "sni": "a.test"}
    assert [(c["check"], c["result"], c["detail"]) for c in doc["checks"]] == parse_table(demo_run.stdout)
    data = {c["check"]: c["data"] for c in doc["checks"]}
    assert data["session ticket, TLS 1.2"]["lifetime_hint"] == 43200
    assert data["HTTP/2 MAX_CONCURRENT_STREAMS"] == {"setting": "MAX_CONCURRENT_STREAMS", "value": 128}
    assert data["NPN advertised"]["advertised"] == ["h2", "http/1.1"]
    assert data["False Start preconditions"]["met"] is True


# -- other listeners: OCSP staple, ALPN switched off, the 2016-08 policy --------------------------------


@pytest.mark.parametrize("status", ["good", "revoked"])
def test_seed_row4_ocsp_staple_when_configured(pki, site_rsa, status: str) -> None:  # type: ignore[no-untyped-def]
    staple = pki.ocsp_response(site_rsa, status=status)
    with Albatross(*site_rsa.args(str(staple))) as proc:
        result, detail = table_of(f"https://127.0.0.1:{proc.port}", "--sni", "a.test")["OCSP staple"]
    assert result == "present"
    assert re.fullmatch(rf"response successful, cert status {status}, next update \d{{4}}-\d\d-\d\dT[\d:]+Z, "
                        "for the served certificate", detail), detail


def test_alpn_off_listener_still_negotiates_h2_by_npn(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--alpn", "") as proc:
        rows = table_of(f"https://127.0.0.1:{proc.port}", "--sni", "a.test")
    assert rows["ALPN preference"] == ("none", "no protocol negotiated by ALPN")
    assert rows["HTTP/2"][0] == "not negotiated"
    assert rows["NPN advertised"][0] == "h2, http/1.1" and rows["NPN negotiated"][0] == "h2"
    result, detail = rows["False Start preconditions"]
    assert result == "yes" and detail.startswith("no ALPN, but NPN negotiated h2")


def test_seed_row6_tls10_aes128_sha_under_2016_08(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--policy", "ELBSecurityPolicy-2016-08") as proc:
        rows = table_of(f"https://127.0.0.1:{proc.port}", "--sni", "a.test")
    # The seed's 2018 client offered no ECDHE suite: ALB (and Albatross) chose AES128-SHA.
    assert rows["TLS 1.0, 2018 client ciphers"] == ("accepted", "cipher AES128-SHA")
    # A client that offers ECDHE gets it first, in ALB's priority order.
    assert rows["TLS 1.0"] == ("accepted", "cipher ECDHE-RSA-AES128-SHA")
    assert rows["TLS 1.1"] == ("accepted", "cipher ECDHE-RSA-AES128-SHA")
    assert rows["TLS 1.3"] == ("refused", "fatal protocol_version alert received")
    assert rows["resumption, TLS 1.3"] == ("not tried", "the server does not do TLS 1.3")


# -- against Debian's nginx ----------------------------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:  # type: ignore[type-arg]
    """Ready when the port accepts a connection (polled; the process must stay alive)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def nginx_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


@pytest.fixture(scope="module")
def nginx(site_rsa, tmp_path_factory):  # type: ignore[no-untyped-def]
    """nginx with nothing but a certificate and HTTP/2: its TLS defaults are what is probed."""
    binary = require_tool("nginx")
    work: Path = tmp_path_factory.mktemp("nginx-tls")
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = " ".join(f"{name}_temp_path {work};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(
        f"{user}worker_processes 1;\ndaemon off;\nerror_log {work}/error.log;\npid {work}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; {temp}\n"
        f"  server {{ listen 127.0.0.1:{port} ssl http2;\n"
        f"    ssl_certificate {site_rsa.cert}; ssl_certificate_key {site_rsa.key};\n"
        '    location / { return 200 "ok\\n"; } } }\n'
    )
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield port, nginx_version(binary)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def nginx_rows(nginx) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return table_of(f"https://127.0.0.1:{nginx[0]}", "--sni", "a.test")


def test_nginx_has_no_npn(nginx_rows: dict[str, tuple[str, str]]) -> None:
    # nginx removed NPN in 1.21.4; ALPN works as on ALB (server preference, h2 first).
    assert nginx_rows["NPN advertised"][0] == "not advertised"
    assert nginx_rows["ALPN preference"][0] == "h2"


def test_nginx_ticket_hint_is_its_session_timeout(nginx_rows: dict[str, tuple[str, str]]) -> None:
    # The hint is ssl_session_timeout, 5 minutes by default (ALB: 43200 s).
    assert nginx_rows["session ticket, TLS 1.2"][0] == "issued, hint 300 s"
    assert nginx_rows["resumption, TLS 1.2 ticket"][0] == "reused"


def test_nginx_does_not_resume_session_ids_by_default(nginx_rows: dict[str, tuple[str, str]]) -> None:
    # ssl_session_cache defaults to "none": a session ID is sent, but nothing is stored.
    assert nginx_rows["resumption, TLS 1.2 session ID"] == (
        "not reused", "tickets off (SSL_OP_NO_TICKET); full handshake: the session ID was not found")


def test_nginx_protocol_versions(nginx, nginx_rows: dict[str, tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    # TLS 1.0/1.1 are in nginx's default ssl_protocols, but OpenSSL 3 at its default security
    # level has no signature algorithm for them ("no suitable signature algorithm" in nginx's log).
    for label in ("TLS 1.0", "TLS 1.1", "TLS 1.0, 2018 client ciphers"):
        assert nginx_rows[label] == ("refused", "fatal internal_error alert received")
    assert nginx_rows["TLS 1.2"] == ("accepted", "cipher ECDHE-RSA-AES256-GCM-SHA384")
    if nginx[1] < (1, 23, 4):  # TLSv1.3 joined the default ssl_protocols in 1.23.4
        assert nginx_rows["TLS 1.3"] == ("refused", "fatal protocol_version alert received")
        assert nginx_rows["resumption, TLS 1.3"][0] == "not tried"
    else:
        assert nginx_rows["TLS 1.3"][0] == "accepted"


def test_nginx_http2_settings(nginx_rows: dict[str, tuple[str, str]]) -> None:
    assert nginx_rows["HTTP/2 MAX_CONCURRENT_STREAMS"][0] == "128"
    assert nginx_rows["HTTP/2 INITIAL_WINDOW_SIZE"][0] == "65536"
    assert nginx_rows["HTTP/2 MAX_FRAME_SIZE"][0] == "16777215"
    assert nginx_rows["HTTP/2 MAX_HEADER_LIST_SIZE"][0] == "not sent"
    result, detail = nginx_rows["HTTP/2 HEAD /"]
    assert result == "200" and detail.startswith("server: nginx/")


def test_nginx_shares_the_seeds_other_answers(nginx_rows: dict[str, tuple[str, str]]) -> None:
    assert nginx_rows["secure renegotiation (RFC 5746)"][0] == "advertised"
    assert nginx_rows["client renegotiation"] == (
        "refused", "warning no_renegotiation alert received; fatal handshake_failure alert sent")
    assert nginx_rows["OCSP staple"][0] == "absent"
    assert nginx_rows["False Start preconditions"][0] == "yes"
    assert nginx_rows["HTTP/1.1, no ALPN or NPN"][0] == "HTTP/1.1 200 OK"


def test_known_differences_between_albatross_and_nginx(rows, nginx_rows) -> None:  # type: ignore[no-untyped-def]
    differ = {check for check in rows if rows[check][0] != nginx_rows.get(check, ("",))[0]}
    assert {"NPN advertised", "NPN negotiated", "session ticket, TLS 1.2", "resumption, TLS 1.2 session ID",
            "HTTP/2 INITIAL_WINDOW_SIZE", "HTTP/2 MAX_FRAME_SIZE", "HTTP/2 MAX_HEADER_LIST_SIZE"} <= differ
    same = {"ALPN preference", "HTTP/2 MAX_CONCURRENT_STREAMS", "secure renegotiation (RFC 5746)",
            "client renegotiation", "OCSP staple", "False Start preconditions", "resumption, TLS 1.2 ticket"}
    assert not same & differ


# -- servers that cannot be probed -------------------------------------------------------------------


def test_closed_port_exits_2_with_a_reason() -> None:
    port = closed_port()
    result = probe(f"https://127.0.0.1:{port}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"albatross: error: 127.0.0.1:{port}: connection refused\n"


def test_plain_http_port_exits_2_with_openssls_reason(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--http-port", "0") as proc:
        port = proc.ports["http"]
        result = probe(f"https://127.0.0.1:{port}")
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(rf"albatross: error: TLS handshake with 127\.0\.0\.1:{port} failed: [a-z ]+\n",
                        result.stderr), result.stderr


def test_silent_server_exits_2_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts (the kernel completes the handshake) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = probe(f"https://127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == 2
    assert result.stderr == f"albatross: error: 127.0.0.1:{port}: no TLS handshake within 1 s\n"

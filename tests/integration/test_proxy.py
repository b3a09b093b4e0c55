"""The data plane end to end: clients -> Albatross (`serve CONFIG`) -> real target servers.

Targets are ``tests/target_server.py`` (h11, independent of Albatross's HTTP code) in their
own processes. Clients are curl, nghttp, httpx (+h2) and raw sockets.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import Albatross, connect, read_until_closed, run


class TargetProcess:
    """One test target in a child process; ``events`` collects what it reports."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.target_server", name], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parents[2])
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.match(rf"target {name} listening (\d+)", line)
        assert m, line
        self.port = int(m.group(1))
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0, after: int = 0) -> None:
        """Wait until a reported line (from index ``after`` on) contains ``text``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines[after:]):
                left = deadline - time.monotonic()
                assert left > 0, f"target {self.name} never reported {text!r}: {self.lines}"
                self._cond.wait(left)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def targets():  # type: ignore[no-untyped-def]
    procs = [TargetProcess("t1"), TargetProcess("t2")]
    yield procs
    for p in procs:
        p.stop()


def write_config(path: Path, cert, groups: dict[str, list[int]], default: str = "main",  # type: ignore[no-untyped-def]
                 attributes: dict[str, object] | None = None) -> Path:
    config = {
        "load_balancer": {"name": "test", "attributes": attributes or {}},
        "listeners": [
            {"protocol": "HTTPS", "port": free_port(), "address": "127.0.0.1",
             "certificates": [{"certificate": str(cert.cert), "private_key": str(cert.key)}],
             "default_actions": [{"type": "forward", "target_group_name": default}]},
            {"protocol": "HTTP", "port": free_port(), "address": "127.0.0.1",
             "default_actions": [{"type": "forward", "target_group_name": default}]},
        ],
        "target_groups": [
            {"name": name, "targets": [{"id": "127.0.0.1", "port": p} for p in ports]}
            for name, ports in groups.items()
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture(scope="module")
def lb(targets, site_rsa, tmp_path_factory):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path_factory.mktemp("lb") / "albatross.yaml", site_rsa,
                        {"main": [t.port for t in targets]})
    with Albatross(serve=str(path), listeners=2) as proc:
        yield proc


def tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client(http2: bool) -> httpx.Client:
    return httpx.Client(http2=http2, verify=tls(), timeout=60)


def header(echo: dict, name: str) -> list[str]:  # type: ignore[type-arg]
    return [v for n, v in echo["headers"] if n.lower() == name.lower()]


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_request_reaches_a_target_with_albs_headers(lb: Albatross, http2: bool) -> None:
    with client(http2) as c:
        r = c.get(f"https://127.0.0.1:{lb.port}/echo?x=1", headers={"X-Forwarded-For": "203.0.113.7"})
    assert r.status_code == 200 and r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    echo = r.json()
    assert echo["target_uri"] == "/echo?x=1"
    assert header(echo, "X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]
    assert header(echo, "X-Forwarded-Proto") == ["https"]
    assert header(echo, "X-Forwarded-Port") == [str(lb.port)]
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", header(echo, "X-Amzn-Trace-Id")[0])
    assert header(echo, "Host") == [f"127.0.0.1:{lb.port}"]
    assert not header(echo, "Connection") or header(echo, "Connection") == ["keep-alive"]
    assert r.headers["x-target"] in ("t1", "t2")


def test_round_robin_spreads_requests_over_both_targets(lb: Albatross) -> None:
    with client(False) as c:
        seen = [c.get(f"https://127.0.0.1:{lb.port}/echo").headers["x-target"] for _ in range(10)]
    assert sorted(set(seen)) == ["t1", "t2"]
    assert seen.count("t1") == 5


def test_plain_http_listener_forwards_with_proto_http(lb: Albatross) -> None:
    http_port = [p for scheme, p in lb.listening if scheme == "http"][0]
    r = httpx.get(f"http://127.0.0.1:{http_port}/echo")
    assert header(r.json(), "X-Forwarded-Proto") == ["http"]


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
@pytest.mark.parametrize("size", [0, 1, 65543, 5 * 1024 * 1024])
def test_bodies_arrive_byte_identical_both_ways(lb: Albatross, http2: bool, size: int) -> None:
    from tests.target_server import pattern

    body = pattern(size)
    with client(http2) as c:
        up = c.post(f"https://127.0.0.1:{lb.port}/echo", content=body)
        down = c.get(f"https://127.0.0.1:{lb.port}/bytes/{size}")
        chunked = c.get(f"https://127.0.0.1:{lb.port}/chunked/{size}")
    assert up.json()["body_length"] == size
    assert up.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert hashlib.sha256(down.content).hexdigest() == down.headers["x-body-sha256"]
    assert len(down.content) == size
    assert hashlib.sha256(chunked.content).hexdigest() == chunked.headers["x-body-sha256"]


def test_http2_many_streams_on_one_connection(lb: Albatross) -> None:
    out = run(["h2load", "-n", "200", "-c", "1", "-m", "128", f"https://127.0.0.1:{lb.port}/echo"], timeout=120).stdout
    assert "200 succeeded, 0 failed, 0 errored" in out, f"{out}\n--- balancer log:\n{lb.log[-6000:]}"
    assert "status codes: 200 2xx" in out


def test_curl_http2_through_to_the_target(lb: Albatross) -> None:
    out = run(["curl", "-sk", "-v", "--http2", f"https://127.0.0.1:{lb.port}/echo"], timeout=30).stdout
    assert "ALPN: server accepted h2" in out
    assert re.search(r"^< x-target: t[12]", out, re.M)
    assert '"target": "t' in out


def test_tls_version_and_cipher_headers_when_the_attribute_is_on(targets, site_rsa, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path / "tls.yaml", site_rsa, {"main": [targets[0].port]},
                        attributes={"routing.http.x_amzn_tls_version_and_cipher_suite.enabled": True})
    with Albatross(serve=str(path), listeners=2) as proc, client(False) as c:
        spoof = {"x-amzn-tls-version": "TLSv0.9", "x-amzn-tls-cipher-suite": "NULL"}
        echo = c.get(f"https://127.0.0.1:{proc.port}/echo", headers=spoof).json()
        assert header(echo, "x-amzn-tls-version") == ["TLSv1.3"]
        assert header(echo, "x-amzn-tls-cipher-suite") == ["TLS_AES_128_GCM_SHA256"]
        # Plain HTTP has no TLS to report; the client's copies are dropped there too.
        plain = httpx.get(f"http://127.0.0.1:{proc.ports['http']}/echo", headers=spoof).json()
        assert header(plain, "x-amzn-tls-version") == [] and header(plain, "x-amzn-tls-cipher-suite") == []


def test_tls_headers_are_off_by_default_and_client_copies_dropped(lb: Albatross) -> None:
    with client(False) as c:
        echo = c.get(f"https://127.0.0.1:{lb.port}/echo", headers={"x-amzn-tls-version": "TLSv0.9"}).json()
    assert header(echo, "x-amzn-tls-version") == []


# -- ALB's own error responses ------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_lb(targets, site_rsa, tmp_path_factory):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path_factory.mktemp("broken") / "albatross.yaml", site_rsa,
                        {"main": [targets[0].port], "empty": [], "refused": [closed_port()]},
                        attributes={"idle_timeout.timeout_seconds": 2})
    with Albatross(serve=str(path), listeners=2) as proc:
        yield proc


def test_no_registered_target_is_503(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path / "a.yaml", site_rsa, {"empty": []}, default="empty")
    with Albatross(serve=str(path), listeners=2) as proc, client(False) as c:
        r = c.get(f"https://127.0.0.1:{proc.port}/")
    assert r.status_code == 503 and r.headers["server"] == "albatross"
    assert "<title>503 Service Unavailable</title>" in r.text


def test_refused_target_is_502(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path / "a.yaml", site_rsa, {"refused": [closed_port()]}, default="refused")
    with Albatross(serve=str(path), listeners=2) as proc:
        for http2 in (False, True):
            with client(http2) as c:
                r = c.get(f"https://127.0.0.1:{proc.port}/")
            assert r.status_code == 502
        proc.wait_for_log(r"cannot connect to target 127\.0\.0\.1:\d+")


@pytest.mark.parametrize("path", ["/close-early", "/garbage"])
def test_target_failing_before_the_response_is_502(broken_lb: Albatross, path: str) -> None:
    with client(False) as c:
        assert c.get(f"https://127.0.0.1:{broken_lb.port}{path}").status_code == 502
        assert c.get(f"https://127.0.0.1:{broken_lb.port}/echo").status_code == 200  # the next one is fine


def test_target_dying_mid_response_cuts_the_response(broken_lb: Albatross) -> None:
    for http2 in (False, True):
        with client(http2) as c, pytest.raises(httpx.HTTPError):
            c.get(f"https://127.0.0.1:{broken_lb.port}/close-mid")
    with client(False) as c:
        assert c.get(f"https://127.0.0.1:{broken_lb.port}/echo").status_code == 200


def test_target_that_never_answers_is_504_after_the_idle_timeout(broken_lb: Albatross) -> None:
    started = time.monotonic()
    with client(False) as c:
        r = c.get(f"https://127.0.0.1:{broken_lb.port}/hang")
    assert r.status_code == 504
    assert time.monotonic() - started < 10


def test_client_leaving_early_abandons_the_target_request(broken_lb: Albatross, targets) -> None:  # type: ignore[no-untyped-def]
    http_port = [p for scheme, p in broken_lb.listening if scheme == "http"][0]
    before = len(targets[0].lines)
    with connect(http_port) as sock:
        sock.sendall(b"GET /slow/5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        targets[0].wait_for("request /slow/5000", after=before)
    # 460: the balancer closes its connection to the target instead of waiting 5 s for the answer.
    targets[0].wait_for("closed", timeout=4, after=before)


def test_too_many_forwarded_addresses_is_463(lb: Albatross) -> None:
    xff = ", ".join(f"10.0.0.{i}" for i in range(31))
    with client(False) as c:
        r = c.get(f"https://127.0.0.1:{lb.port}/echo", headers={"X-Forwarded-For": xff})
    assert r.status_code == 463


@pytest.mark.parametrize("raw", [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    b"GET /echo HTTP/1.1\nHost: x\n\n",
])
def test_request_smuggling_attempts_are_refused(lb: Albatross, targets, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    http_port = [p for scheme, p in lb.listening if scheme == "http"][0]
    with connect(http_port) as sock:
        sock.sendall(raw + b"GET /echo HTTP/1.1\r\nHost: smuggled\r\n\r\n")
        sock.settimeout(10)
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ") or data.startswith(b"HTTP/1.1 501 "), data[:200]
    assert b"smuggled" not in data
    assert data.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_websocket_upgrade_is_tunnelled(lb: Albatross, scheme: str) -> None:
    port = lb.port if scheme == "https" else [p for s, p in lb.listening if s == "http"][0]
    raw = connect(port)
    sock = tls().wrap_socket(raw, server_hostname="a.test") if scheme == "https" else raw
    with sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        prefix = 3  # "t1:" or "t2:" before the first echoed byte
        for message in (b"hello", b"x" * 100_000):
            sock.sendall(message)
            want = len(message) + prefix
            while len(rest) < want:
                chunk = sock.recv(65536)
                assert chunk
                rest += chunk
            if prefix:
                assert rest[:3] in (b"t1:", b"t2:")
            assert rest[prefix:want] == message
            rest, prefix = rest[want:], 0


def test_oversized_target_response_header_is_502(broken_lb: Albatross) -> None:
    with client(False) as c:
        assert c.get(f"https://127.0.0.1:{broken_lb.port}/bigheader").status_code == 502


def test_trace_is_405_and_never_forwarded(lb: Albatross) -> None:
    with client(False) as c:
        assert c.request("TRACE", f"https://127.0.0.1:{lb.port}/echo").status_code == 405


def test_expect_100_continue_is_relayed(lb: Albatross) -> None:
    http_port = [p for s, p in lb.listening if s == "http"][0]
    with connect(http_port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")  # from the target, before the body
        sock.sendall(b"hello")
        data = b""
        while b'"body_length": 5' not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert b"HTTP/1.1 200 OK" in data


def test_h2c_upgrade_is_never_forwarded(lb: Albatross) -> None:
    http_port = [p for s, p in lb.listening if s == "http"][0]
    out = run(["curl", "-sS", "-D", "-", "--http2", f"http://127.0.0.1:{http_port}/echo"], timeout=30).stdout
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK")  # no 101: the client stays on HTTP/1.1
    echo = json.loads(body)
    assert not header(echo, "Upgrade") and not header(echo, "HTTP2-Settings")
    assert "upgrade" not in " ".join(header(echo, "Connection")).lower()


def test_client_stalling_mid_request_gets_408(broken_lb: Albatross) -> None:
    http_port = [p for s, p in broken_lb.listening if s == "http"][0]
    with connect(http_port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        sock.settimeout(15)
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_head_keeps_the_targets_length_and_headers_are_not_doubled(lb: Albatross, http2: bool) -> None:
    with client(http2) as c:
        head = c.head(f"https://127.0.0.1:{lb.port}/bytes/1234")
        get = c.get(f"https://127.0.0.1:{lb.port}/bytes/1234")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "1234"
    assert len(get.headers.get_list("date")) == 1  # the target's own Date, not a second one
    assert "server" not in get.headers  # the target sent none; Albatross adds none to proxied responses


def test_no_connection_within_10_s_is_504(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so a connect
    # to it neither succeeds nor fails (a target that is up but overwhelmed, or firewalled).
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(full.getsockname())
        fillers.append(s)
    path = write_config(tmp_path / "a.yaml", site_rsa, {"stuck": [full.getsockname()[1]]}, default="stuck")
    try:
        with Albatross(serve=str(path), listeners=2) as proc, client(False) as c:
            started = time.monotonic()
            r = c.get(f"https://127.0.0.1:{proc.port}/")
            waited = time.monotonic() - started
            assert r.status_code == 504
            assert 9 < waited < 20
            proc.wait_for_log(r"no connection to target 127\.0\.0\.1:\d+ within 10 s")
    finally:
        for s in fillers:
            s.close()
        full.close()


def test_target_killed_with_a_request_in_flight_is_502(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    target = TargetProcess("doomed")
    path = write_config(tmp_path / "a.yaml", site_rsa, {"doomed": [target.port]}, default="doomed")
    with Albatross(serve=str(path), listeners=2) as proc, client(False) as c:
        result: list[httpx.Response] = []
        t = threading.Thread(target=lambda: result.append(c.get(f"https://127.0.0.1:{proc.port}/hang")))
        t.start()
        target.wait_for("request /hang")
        target.stop()  # SIGKILL: the kernel resets the connection
        t.join(15)
        assert not t.is_alive(), "the request hung after its target died"
        assert result[0].status_code == 502


def test_response_trailers_reach_http2_and_http11_clients(lb: Albatross) -> None:
    out = run(["nghttp", "-v", f"https://127.0.0.1:{lb.port}/trailers"], timeout=30).stdout
    assert "body with a trailer" in out
    trailer_frame = out.split("body with a trailer", 1)[1]
    assert "recv HEADERS frame" in trailer_frame and "x-digest: sha256-of-nothing" in trailer_frame
    http_port = [p for s, p in lb.listening if s == "http"][0]
    with connect(http_port) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
    assert b"Transfer-Encoding: chunked" in data
    assert data.endswith(b"0\r\nX-Digest: sha256-of-nothing\r\n\r\n")

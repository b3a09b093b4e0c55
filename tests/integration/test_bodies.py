"""Bodies of 0 B to 100 MB through Albatross, byte-identical both ways, over HTTP/1.1 and HTTP/2.

Downloads come from Debian's nginx (an independent origin serving static files); uploads go
to the h11 test target, which answers with the SHA-256 of what it received.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import Albatross, require_tool
from tests.integration.test_proxy import TargetProcess, client, free_port, write_config
from tests.target_server import pattern

SIZES = [0, 1, 16 * 1024 + 3, 1024 * 1024, 100 * 1024 * 1024]


class Nginx:
    """Debian's nginx on loopback, serving ``root``, in the foreground as a child process."""

    def __init__(self, root: Path, workdir: Path) -> None:
        binary = require_tool("nginx")
        self.port = free_port()
        conf = workdir / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}worker_processes 1;\ndaemon off;\nerror_log {workdir}/error.log;\npid {workdir}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {workdir}; proxy_temp_path {workdir};\n"
            f"  fastcgi_temp_path {workdir}; uwsgi_temp_path {workdir}; scgi_temp_path {workdir};\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {root}; keepalive_requests 100000; }} }}\n"
        )
        self.proc = subprocess.Popen([binary, "-p", str(workdir), "-c", str(conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:  # ready when the port accepts
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else b""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("www")
    for size in SIZES:
        (root / f"f{size}").write_bytes(pattern(size))
    nginx = Nginx(root, tmp_path_factory.mktemp("nginx"))
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def lb(origin, site_rsa, tmp_path_factory):  # type: ignore[no-untyped-def]
    target = TargetProcess("up")
    path = write_config(tmp_path_factory.mktemp("lb") / "albatross.yaml", site_rsa,
                        {"main": [origin.port], "upload": [target.port]})
    # The second listener becomes HTTPS too and forwards to the upload target instead of nginx.
    data = yaml.safe_load(path.read_text())
    data["listeners"][1]["protocol"] = "HTTPS"
    data["listeners"][1]["certificates"] = data["listeners"][0]["certificates"]
    data["listeners"][1]["default_actions"][0]["target_group_name"] = "upload"
    path.write_text(yaml.safe_dump(data))
    with Albatross(serve=str(path), listeners=2) as proc:
        yield proc
    target.stop()


def ports(lb: Albatross) -> tuple[int, int]:
    (_, download), (_, upload) = lb.listening
    return download, upload


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
@pytest.mark.parametrize("size", SIZES)
def test_download_is_byte_identical(lb: Albatross, http2: bool, size: int) -> None:
    download, _ = ports(lb)
    digest = hashlib.sha256()
    received = 0
    with client(http2) as c, c.stream("GET", f"https://127.0.0.1:{download}/f{size}") as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(pattern(size)).hexdigest()


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
@pytest.mark.parametrize("size", SIZES)
def test_upload_is_byte_identical(lb: Albatross, http2: bool, size: int) -> None:
    _, upload = ports(lb)
    body = pattern(size)

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 1 << 20):
            yield body[i:i + (1 << 20)]

    with client(http2) as c:
        r = c.post(f"https://127.0.0.1:{upload}/echo", content=chunks() if size > 1 << 20 else body)
    assert r.status_code == 200, r.text
    echo = r.json()
    assert echo["body_length"] == size
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_a_slow_reader_does_not_make_the_balancer_buffer_the_body(lb: Albatross) -> None:
    """Backpressure: a client that reads nothing leaves the 100 MB response mostly unread upstream."""
    download, _ = ports(lb)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    rss_before = _rss_kib(lb.proc.pid)
    with socket.create_connection(("127.0.0.1", download)) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        with ctx.wrap_socket(raw, server_hostname="a.test") as sock:
            sock.sendall(f"GET /f{SIZES[-1]} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
            sock.recv(1024)
            time.sleep(1.5)  # time for a balancer without backpressure to pull the whole body in
            grown = _rss_kib(lb.proc.pid) - rss_before
    assert grown < 30 * 1024, f"balancer RSS grew by {grown} KiB while the client was not reading"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


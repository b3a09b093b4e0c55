#!/usr/bin/env python3
"""HTTPS proxy throughput, latency and CPU per request: albatross against nginx and haproxy.

Three load balancers, configured alike, run side by side in front of one fast target:

* ``albatross serve`` (uvloop), from a generated YAML configuration;
* nginx, 1 worker, ``proxy_http_version 1.1``, upstream ``keepalive 64``, HTTP/2 on the TLS
  listener;
* haproxy, ``nbthread 1``, ``alpn h2,http/1.1``, ``http-reuse always``.

All three terminate TLS 1.3 only, with the same ECDSA P-256 certificate, the same cipher
(TLS_AES_128_GCM_SHA256, Albatross's first choice) and the same groups (X25519 first), and
all three add X-Forwarded-For/-Proto/-Port as ALB does. The target is Debian's nginx
(1 worker) serving a 47-byte and a 16 KiB static file on its own port.

CPU placement: the balancer and the target on CPU0 (``taskset -c 0``), the load generator on
CPU1 (``taskset -c 1``). The target shares the balancer's core (not the client's) so the
client, which also pays for TLS, keeps a whole core; the target's CPU per request is reported
so its share of CPU0 is visible. Balancer CPU per request is its utime+stime delta from
/proc/PID/stat (nginx: master + worker) divided by the requests completed.

Loads (each cell ``--seconds`` long, every balancer in every round, rotating order):

* ``h1`` : ``wrk -t1 -c50 --latency`` HTTP/1.1 keep-alive, 47 B and 16 KiB responses;
* ``h2`` : ``h2load -c10 -m10 -D S`` HTTP/2, 47 B and 16 KiB;
* ``new``: ``wrk -t1 -c10 -H 'Connection: close'``: a new TCP connection and a full TLS 1.3
  handshake for every request (the balancer closes after each response, wrk reconnects and
  never resumes a session). Checked by counting the kernel's passive TCP opens during the
  cell. (``h2load --h1 -D S`` with ``Connection: close`` does not work in nghttp2 1.52: over
  TLS it hangs, over TCP it prints no result; wrk's latency there starts after the handshake.)

    .venv/bin/python bench/proxy.py [--seconds N] [--rounds N] [--quick] [--profile]

``--profile`` also samples albatross with py-spy (``--nonblocking``) and perf under the h1 47 B
load and prints the top self-time lines. Only loopback is used. Every process started here
is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import shutil
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from procstat import cpu_busy, cpu_ticks, free_port, nginx_conf, only_worker, terminate  # bench/ is on sys.path when a script runs

HOST = "127.0.0.1"
LB_CPU = "0"
TARGET_CPU = "0"
CLIENT_CPU = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
ALBATROSS = os.path.join(VENV_BIN, "albatross")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SUITE = "TLS_AES_128_GCM_SHA256"
SMALL, LARGE = 47, 16384
# Roughly one request per 10 µs of client time is plenty of headroom for 5 s.
WRK_SCRIPT = """\
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50": %d, "p99": %d, "duration": %d}\\n',
    summary.requests, summary.bytes, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99),
    summary.duration))
end
"""


# --------------------------------------------------------------------------- helpers

def make_certificate(directory: str) -> tuple[str, str, str]:
    """ECDSA P-256 self-signed certificate: (cert, key, cert+key for haproxy)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    crt = cert.public_bytes(serialization.Encoding.PEM)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    paths = [os.path.join(directory, n) for n in ("lb.crt", "lb.key", "lb.pem")]
    for path, data in zip(paths, (crt, pem, crt + pem)):
        with open(path, "wb") as f:
            f.write(data)
    return paths[0], paths[1], paths[2]


def ctx_switches(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def passive_opens() -> int:
    """Kernel-wide count of accepted TCP connections (Tcp: PassiveOpens)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("PassiveOpens")])


def wait_port(port: int, proc: subprocess.Popen, log: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[3] if len(proc.args) > 3 else proc.args} exited early "
                               f"({proc.returncode}): {open(log, errors='replace').read()[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not ready")


def http_get(port: int, path: str, *, tls: bool = False, h2: bool = False,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the stdlib only (HTTP/1.1), or via curl for HTTP/2."""
    if h2:
        out = subprocess.run(["curl", "-sk", "--http2", "-D", "-", "-o", "/dev/stderr",
                              f"https://{HOST}:{port}{path}"], capture_output=True, timeout=10)
        head = out.stdout.decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        hdrs = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if ":" in h)}
        hdrs[":version"] = head[0].split()[0]
        return status, hdrs, out.stderr
    import http.client
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if tls:
            hdrs[":tls"] = f"{conn.sock.version()} {conn.sock.cipher()[0]}"
        return r.status, hdrs, body
    finally:
        conn.close()


# --------------------------------------------------------------------------- target

TARGET_HTTP = """\
    sendfile on;
    tcp_nopush on;
    open_file_cache max=100 inactive=600s;
    keepalive_timeout 900s;
    keepalive_requests 10000000;
    default_type application/octet-stream;
    server {{
        listen {host}:{port} backlog=4096;
        root {prefix}/www;
        location = /nginx_status {{ stub_status; }}
    }}
"""


class Nginxish:
    """Start an nginx (target or balancer) under taskset; pids = master + worker."""

    def __init__(self, label: str, workdir: str, conf_text: str, cpu: str, port: int) -> None:
        self.label = label
        self.prefix = tempfile.mkdtemp(prefix=f"{label}-", dir=workdir)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text.replace("{prefix}", self.prefix))
        self.command = ["taskset", "-c", cpu, NGINX, "-p", self.prefix, "-c", self.conf]
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.worker = 0

    def start(self) -> None:
        log = os.path.join(self.prefix, "stderr.log")
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, log)
        self.worker = only_worker(self.proc.pid, self.label)

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, self.worker]

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, self.worker)


def start_target(workdir: str) -> Nginxish:
    port = free_port()
    text = nginx_conf(TARGET_HTTP.format(prefix="{prefix}", host=HOST, port=port), "{prefix}")
    target = Nginxish("target", workdir, text, TARGET_CPU, port)
    www = os.path.join(target.prefix, "www")
    os.makedirs(www)
    with open(os.path.join(www, "47"), "wb") as f:
        f.write(b"x" * (SMALL - 1) + b"\n")
    with open(os.path.join(www, "16k"), "wb") as f:
        f.write(bytes(range(256)) * (LARGE // 256))
    target.start()
    return target


def target_accepts(port: int) -> int:
    """Accepted connections so far, from the target's stub_status (this request included)."""
    _, _, body = http_get(port, "/nginx_status")
    return int(body.split(b"\n")[2].split()[0])


# --------------------------------------------------------------------------- balancers

NGINX_LB_HTTP = """\
    keepalive_timeout 900s;
    keepalive_requests 10000000;
    upstream web {{
        server {host}:{target};
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 900s;
    }}
    server {{
        listen {host}:{port} ssl http2 backlog=4096;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites {suite};
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Port {port};
        }}
    }}
"""

HAPROXY_CONF = """\
global
    nbthread 1
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.3
    ssl-default-bind-ciphersuites {suite}
    ssl-default-bind-curves X25519:P-256:P-384
    stats socket {prefix}/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 10s
    timeout client 900s
    timeout server 900s
    timeout http-keep-alive 900s
    option http-keep-alive
frontend fe
    bind {host}:{port} ssl crt {pem} alpn h2,http/1.1
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Port {port}
    default_backend web
backend web
    http-reuse always
    server t1 {host}:{target}
"""

ALBATROSS_CONF = """\
load_balancer:
  name: bench
  attributes:
    idle_timeout.timeout_seconds: 900
tls:
  handshake_timeout_seconds: 60
listeners:
  - protocol: HTTPS
    port: {port}
    address: {host}
    ssl_policy: ELBSecurityPolicy-TLS13-1-3-2021-06
    certificates:
      - certificate: {crt}
        private_key: {key}
    default_actions:
      - type: forward
        target_group_name: web
target_groups:
  - name: web
    targets:
      - id: {host}
        port: {target}
"""


@dataclass
class Balancer:
    kind: str  # albatross | nginx | haproxy
    workdir: str
    cert: tuple[str, str, str]
    target_port: int
    port: int = 0
    proc: subprocess.Popen | None = None
    ngx: Nginxish | None = None
    command: list[str] = field(default_factory=list)
    conf_path: str = ""

    def start(self) -> None:
        crt, key, pem = self.cert
        self.port = free_port()
        values = dict(host=HOST, port=self.port, target=self.target_port, crt=crt, key=key, pem=pem, suite=SUITE)
        if self.kind == "nginx":
            conf = nginx_conf(NGINX_LB_HTTP.format(**values), "{prefix}")
            self.ngx = Nginxish("nginx-lb", self.workdir, conf, LB_CPU, self.port)
            self.ngx.start()
            self.command, self.conf_path = self.ngx.command, self.ngx.conf
            return
        prefix = tempfile.mkdtemp(prefix=f"{self.kind}-", dir=self.workdir)
        log = os.path.join(prefix, "stderr.log")
        if self.kind == "haproxy":
            self.conf_path = os.path.join(prefix, "haproxy.cfg")
            with open(self.conf_path, "w") as f:
                f.write(HAPROXY_CONF.format(prefix=prefix, **values))
            self.command = ["taskset", "-c", LB_CPU, HAPROXY, "-db", "-f", self.conf_path]
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                                         stderr=subprocess.STDOUT)
            wait_port(self.port, self.proc, log)
            return
        self.conf_path = os.path.join(prefix, "albatross.yaml")
        with open(self.conf_path, "w") as f:
            f.write(ALBATROSS_CONF.format(**values))
        self.command = ["taskset", "-c", LB_CPU, ALBATROSS, "serve", self.conf_path, "--log-level", "WARNING"]
        env = dict(os.environ)
        env.pop("SSLKEYLOGFILE", None)
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while f"albatross: listening https {HOST} {self.port}" not in open(log, errors="replace").read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"albatross did not start: {open(log, errors='replace').read()[-2000:]}")
            time.sleep(0.05)

    @property
    def pids(self) -> list[int]:
        if self.ngx is not None:
            return self.ngx.pids
        assert self.proc is not None
        return [self.proc.pid]

    @property
    def main_pid(self) -> int:
        return self.ngx.worker if self.ngx is not None else self.proc.pid  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.ngx is not None:
            self.ngx.stop()
            return
        terminate(self.proc)

    def pretty_command(self) -> str:
        cmd = [os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in self.command]
        return " ".join(re.sub(r"^/tmp/.*/", "TMP/", c) for c in cmd)


# --------------------------------------------------------------------------- loads

@dataclass
class Load:
    key: str
    label: str
    path: str
    tool: str  # wrk | h2load

    def args(self, port: int, seconds: int, workdir: str) -> list[str]:
        url = f"https://{HOST}:{port}{self.path}"
        if self.tool == "wrk" and self.key.startswith("new"):
            return ["wrk", "-t1", "-c10", f"-d{seconds}s", "--latency", "-H", "Connection: close",
                    "-s", os.path.join(workdir, "done.lua"), url]
        if self.tool == "wrk":
            return ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", "-s", os.path.join(workdir, "done.lua"), url]
        if self.key.startswith("h2"):
            return ["h2load", "-c10", "-m10", "-D", str(seconds), "--log-file", os.path.join(workdir, "h2load.log"), url]
        raise AssertionError(self.key)

    def pretty(self) -> str:
        s = "S"
        if self.tool == "wrk" and self.key.startswith("new"):
            return (f"taskset -c 1 wrk -t1 -c10 -d{s}s --latency -H 'Connection: close' -s done.lua "
                    f"https://127.0.0.1:PORT{self.path}")
        if self.tool == "wrk":
            return f"taskset -c 1 wrk -t1 -c50 -d{s}s --latency -s done.lua https://127.0.0.1:PORT{self.path}"
        if self.key.startswith("h2"):
            return f"taskset -c 1 h2load -c10 -m10 -D {s} --log-file LOG https://127.0.0.1:PORT{self.path}"
        raise AssertionError(self.key)


LOADS = [
    Load("h1-47", "HTTP/1.1 keep-alive, 47 B (wrk -c50)", "/47", "wrk"),
    Load("h1-16k", "HTTP/1.1 keep-alive, 16 KiB (wrk -c50)", "/16k", "wrk"),
    Load("h2-47", "HTTP/2, 47 B (h2load -c10 -m10)", "/47", "h2load"),
    Load("h2-16k", "HTTP/2, 16 KiB (h2load -c10 -m10)", "/16k", "h2load"),
    Load("new-47", "new TLS connection per request, 47 B (wrk -c10, Connection: close)", "/47", "wrk"),
]


@dataclass
class Result:
    rps: float
    requests: int
    errors: int
    non2xx: int
    body_ok: bool
    bytes_per_req: float
    p50_ms: float
    p99_ms: float
    lb_us: float
    target_us: float
    client_conns: int
    upstream_conns: int
    cpu0: float
    cpu1: float
    client_us: float = 0.0
    other0: float = 0.0  # CPU0 busy share not charged to balancer or target (others' work, irqs)
    other1: float = 0.0  # CPU1 busy share not charged to the load generator
    ctx_per_req: float = 0.0  # balancer (worker) context switches per request


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def parse_wrk(out: str) -> dict:
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out[-2000:]}")
    d = json.loads(m.group(1))
    errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    return dict(requests=d["requests"], rps=d["requests"] / (d["duration"] / 1e6), errors=errors,
                non2xx=d["status"], bytes=d["bytes"], p50=d["p50"] / 1e3, p99=d["p99"] / 1e3, data=None)


def parse_h2load(out: str, log_path: str) -> dict:
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    t = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?\((\d+)\) data", out)
    if not (m and r and s and t):
        raise RuntimeError(f"h2load output not understood:\n{out[-2000:]}")
    done, ok = int(r.group(3)), int(r.group(4))
    durations = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                durations.append(int(parts[2]))
    durations.sort()
    return dict(requests=ok, rps=float(m.group(2)), errors=int(r.group(5)) + int(r.group(6)) + int(r.group(7)),
                non2xx=int(s.group(2)) + int(s.group(3)) + int(s.group(4)) + max(0, done - ok), bytes=int(t.group(1)), data=int(t.group(3)),
                p50=percentile(durations, 50) / 1e3, p99=percentile(durations, 99) / 1e3)


def run_cell(lb: Balancer, load: Load, seconds: int, workdir: str, target: Nginxish) -> tuple[Result, str]:
    cmd = ["taskset", "-c", CLIENT_CPU, *load.args(lb.port, seconds, workdir)]
    log_path = os.path.join(workdir, "h2load.log")
    if os.path.exists(log_path):
        os.unlink(log_path)
    po0 = passive_opens()
    ta0 = target_accepts(target.port)
    lb0, tg0 = cpu_ticks(lb.pids), cpu_ticks(target.pids)
    cs0 = ctx_switches([lb.main_pid])
    c00, c01 = cpu_busy("0"), cpu_busy("1")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lb1, tg1 = cpu_ticks(lb.pids), cpu_ticks(target.pids)
    cs1 = ctx_switches([lb.main_pid])
    c10, c11 = cpu_busy("0"), cpu_busy("1")
    ta1 = target_accepts(target.port)
    po1 = passive_opens()
    out = proc.stdout + proc.stderr
    d = parse_wrk(out) if load.tool == "wrk" else parse_h2load(out, log_path)
    upstream = ta1 - ta0 - 1
    client = po1 - po0 - 2 - upstream
    n = max(1, d["requests"])
    size = LARGE if load.path == "/16k" else SMALL
    body_ok = d["data"] == size * d["requests"] if d["data"] is not None else d["bytes"] >= size * d["requests"]
    res = Result(rps=d["rps"], requests=d["requests"], errors=d["errors"], non2xx=d["non2xx"], body_ok=body_ok,
                 bytes_per_req=d["bytes"] / n, p50_ms=d["p50"], p99_ms=d["p99"],
                 lb_us=1e6 * (lb1 - lb0) / CLK_TCK / n, target_us=1e6 * (tg1 - tg0) / CLK_TCK / n,
                 client_conns=client, upstream_conns=upstream,
                 cpu0=(c10[0] - c00[0]) / max(1, c10[1] - c00[1]), cpu1=(c11[0] - c01[0]) / max(1, c11[1] - c01[1]))
    client_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    res.client_us = 1e6 * client_s / n
    res.ctx_per_req = (cs1 - cs0) / n
    res.other0 = max(0.0, (c10[0] - c00[0]) - (lb1 - lb0) - (tg1 - tg0)) / max(1, c10[1] - c00[1])
    res.other1 = max(0.0, (c11[0] - c01[0]) - client_s * CLK_TCK) / max(1, c11[1] - c01[1])
    return res, out


# --------------------------------------------------------------------------- correctness

def check_balancer(lb: Balancer, target_port: int, files: dict[str, bytes]) -> list[str]:
    """Bodies, status and forwarding headers over HTTP/1.1 and HTTP/2; the negotiated TLS."""
    notes = []
    for path, want in files.items():
        status, hdrs, body = http_get(lb.port, path, tls=True)
        if status != 200 or body != want:
            raise RuntimeError(f"{lb.kind} {path} over HTTP/1.1: status {status}, {len(body)} bytes")
        if path == "/47":
            notes.append(f"HTTP/1.1 {hdrs[':tls']}")
        status, hdrs, body = http_get(lb.port, path, h2=True)
        if status != 200 or body != want or hdrs[":version"] != "HTTP/2":
            raise RuntimeError(f"{lb.kind} {path} over HTTP/2: {hdrs.get(':version')} {status}, {len(body)} bytes")
    out = subprocess.run(["openssl", "s_client", "-connect", f"{HOST}:{lb.port}", "-alpn", "h2,http/1.1"],
                         input="", capture_output=True, text=True, timeout=10).stdout
    alpn = re.search(r"ALPN protocol: (\S+)", out)
    tmp = re.search(r"Server Temp Key: ([^\n]+)", out)
    sig = re.search(r"Peer signature type: (\S+)", out)
    notes.append(f"ALPN {alpn.group(1) if alpn else '?'}; key exchange {tmp.group(1) if tmp else '?'}; "
                 f"signature {sig.group(1) if sig else '?'}")
    return notes


# --------------------------------------------------------------------------- profile

def profile_albatross(lb: Balancer, seconds: int, workdir: str, target: Nginxish) -> list[str]:
    """py-spy (non-blocking) and perf under the HTTP/1.1 47 B keep-alive load."""
    lines: list[str] = []
    pyspy = os.path.join(VENV_BIN, "py-spy")
    load = LOADS[0]
    wrk = ["taskset", "-c", CLIENT_CPU, *load.args(lb.port, seconds + 2, workdir)]
    if os.access(pyspy, os.X_OK):
        out = os.path.join(workdir, "albatross.speedscope.json")
        client = subprocess.Popen(wrk, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            # py-spy itself runs on the client core so it steals nothing from the balancer.
            subprocess.run(["taskset", "-c", CLIENT_CPU, pyspy, "record", "--nonblocking", "-r", "250",
                            "-d", str(seconds), "-p", str(lb.proc.pid), "--format", "speedscope", "-o", out,
                            "--full-filenames"], capture_output=True, timeout=seconds + 60)
        finally:
            client.wait(timeout=seconds + 30)
        lines += summarize_speedscope(out)
    if shutil.which("perf"):
        data = os.path.join(workdir, "perf.data")
        client = subprocess.Popen(wrk, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            rec = subprocess.run(["taskset", "-c", CLIENT_CPU, "perf", "record", "-F", "999", "-g", "-o", data,
                                  "-p", str(lb.proc.pid), "--", "sleep", str(seconds)],
                                 capture_output=True, text=True, timeout=seconds + 60)
        finally:
            client.wait(timeout=seconds + 30)
        if rec.returncode == 0:
            lines += summarize_perf(data)
        else:
            lines.append(f"perf record failed: {rec.stderr.strip()[-300:]}")
    return lines


def summarize_speedscope(path: str) -> list[str]:
    with open(path) as f:
        doc = json.load(f)
    frames = doc["shared"]["frames"]
    self_by_line: collections.Counter = collections.Counter()
    self_by_func: collections.Counter = collections.Counter()
    total_by_func: collections.Counter = collections.Counter()
    total = 0
    count = 0
    for prof in doc["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"]):
            total += weight
            count += 1
            if not stack:
                continue
            leaf = frames[stack[-1]]
            fn = os.path.relpath(leaf.get("file", "?"), ROOT) if leaf.get("file", "").startswith(ROOT) else \
                re.sub(r".*/site-packages/", "", leaf.get("file", "?"))
            self_by_line[f"{leaf['name']} ({fn}:{leaf.get('line', '?')})"] += weight
            self_by_func[f"{leaf['name']} ({fn})"] += weight
            seen = set()
            for i in stack:
                fr = frames[i]
                k = f"{fr['name']} ({re.sub(r'.*/(src|site-packages)/', '', fr.get('file', '?'))})"
                if k not in seen:
                    seen.add(k)
                    total_by_func[k] += weight
    out = [f"py-spy record --nonblocking -r 250: {count} non-idle samples; % of those", "", "Top self time by line:", ""]
    out += [f"  {100 * w / total:5.1f}%  {k}" for k, w in self_by_line.most_common(15)]
    out += ["", "Top self time by function:", ""]
    out += [f"  {100 * w / total:5.1f}%  {k}" for k, w in self_by_func.most_common(15)]
    out += ["", "Top inclusive time by function:", ""]
    out += [f"  {100 * w / total:5.1f}%  {k}" for k, w in total_by_func.most_common(20)]
    return out


def summarize_perf(data: str) -> list[str]:
    out = ["", "perf record -F 999 -g (self time by shared object):", ""]
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g", "none",
                          "--percent-limit", "0.5"], capture_output=True, text=True, timeout=120).stdout
    out += ["  " + line.strip() for line in rep.splitlines() if line.strip() and not line.startswith("#")][:15]
    out += ["", "perf: top symbols (self):", ""]
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio",
                          "-g", "none", "--percent-limit", "0.7"], capture_output=True, text=True, timeout=120).stdout
    out += ["  " + line.strip() for line in rep.splitlines() if line.strip() and not line.startswith("#")][:40]
    return out


# --------------------------------------------------------------------------- main

KINDS = [("albatross", "albatross (uvloop)"), ("nginx", "nginx 1 worker"), ("haproxy", "haproxy nbthread 1")]


def machine() -> list[str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    def first(cmd: list[str]) -> str:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    alb = subprocess.run([ALBATROSS, "version"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True).stdout.strip()
    alb += f" at commit {rev or '?'}" + (" (src/ modified)" if dirty else "")
    return [f"nproc {os.cpu_count()}, CPU {model}, kernel {os.uname().release}",
            f"{alb}; Python {sys.version.split()[0]}",
            f"{first([NGINX, '-v'])}; {first([HAPROXY, '-v'])}; {first(['wrk', '-v'])}; {first(['h2load', '--version'])}"]


def fmt_cell(rs: list[Result], attr: str, fmt: str) -> str:
    return ", ".join(format(getattr(r, attr), fmt) for r in rs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=None, help="seconds per cell (default 5; 2 with --quick)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 2; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short cells, one round (under a minute)")
    ap.add_argument("--profile", action="store_true", help="also profile albatross (py-spy, perf) under h1 47 B")
    ap.add_argument("--only", default=None, help="comma-separated load keys to run (e.g. h1-47,new-47)")
    args = ap.parse_args()
    seconds = args.seconds or (2 if args.quick else 5)
    rounds = args.rounds or (1 if args.quick else 2)
    loads = [ld for ld in LOADS if not args.only or ld.key in args.only.split(",")]
    for tool in ("taskset", "wrk", "h2load", "curl", "openssl"):
        if not shutil.which(tool):
            print(f"proxy.py: {tool} not found", file=sys.stderr)
            return 2
    if os.cpu_count() < 2:
        print("proxy.py: needs 2 CPUs (balancer on 0, client on 1)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    kinds = [k for k in KINDS if k[0] != "haproxy" or os.access(HAPROXY, os.X_OK)]
    workdir = tempfile.mkdtemp(prefix="albatross-proxy-bench-")
    with open(os.path.join(workdir, "done.lua"), "w") as f:
        f.write(WRK_SCRIPT)
    started = time.monotonic()
    results: dict[tuple[str, str], list[Result]] = {}
    checks: dict[str, list[str]] = {}
    balancers: dict[str, Balancer] = {}
    profile: list[str] = []
    target: Nginxish | None = None
    try:
        cert = make_certificate(workdir)
        target = start_target(workdir)
        files = {p: open(os.path.join(target.prefix, "www", p.lstrip("/")), "rb").read() for p in ("/47", "/16k")}
        for path, want in files.items():
            status, _, body = http_get(target.port, path)
            assert status == 200 and body == want, f"target {path}: {status} {len(body)}"
        for kind, _ in kinds:
            lb = Balancer(kind, workdir, cert, target.port)
            balancers[kind] = lb
            lb.start()
            checks[kind] = check_balancer(lb, target.port, files)
            # Warm-up: fills upstream pools and caches, so the first cell is not special.
            subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", "-c50", "-d1s", f"https://{HOST}:{lb.port}/47"],
                           capture_output=True, timeout=60)
            subprocess.run(["taskset", "-c", CLIENT_CPU, "h2load", "-c10", "-m10", "-n", "5000",
                            f"https://{HOST}:{lb.port}/47"], capture_output=True, timeout=60)
            print(f"  {kind:10} port {lb.port}: " + "; ".join(checks[kind]), file=sys.stderr, flush=True)
        for rnd in range(rounds):
            for i, load in enumerate(loads):
                shift = (i + rnd) % len(kinds)
                for kind, _ in kinds[shift:] + kinds[:shift]:
                    r, out = run_cell(balancers[kind], load, seconds, workdir, target)
                    results.setdefault((load.key, kind), []).append(r)
                    print(f"  r{rnd} {load.key:7} {kind:10} {r.rps:9.0f} req/s p50 {r.p50_ms:6.2f} p99 {r.p99_ms:6.2f} ms"
                          f" lb {r.lb_us:6.1f} us/req tgt {r.target_us:4.1f} conns {r.client_conns}/{r.upstream_conns}"
                          f" err {r.errors} non2xx {r.non2xx} body {'ok' if r.body_ok else 'BAD'}"
                          f" {r.bytes_per_req:.0f} B/req cpu0 {100 * r.cpu0:.0f}% cpu1 {100 * r.cpu1:.0f}%"
                          f" client {r.client_us:.1f} us/req cs/req {r.ctx_per_req:.2f} other0 {100 * r.other0:.0f}% other1 {100 * r.other1:.0f}%",
                          file=sys.stderr, flush=True)
                    if r.errors or r.non2xx or not r.body_ok:
                        with open(os.path.join(workdir, "last-failure.txt"), "w") as f:
                            f.write(out)
                        print(out[-1500:], file=sys.stderr)
        if args.profile:
            profile = profile_albatross(balancers["albatross"], max(seconds, 5), workdir, target)
    finally:
        for lb in balancers.values():
            lb.stop()
        if target is not None:
            target.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------ report
    names = dict(kinds)
    lines = [f"## HTTPS proxy: albatross vs nginx vs haproxy ({seconds} s per cell, {rounds} round(s), "
             f"{time.strftime('%Y-%m-%d')})", ""]
    lines += [f"* {m}" for m in machine()]
    lines += [f"* balancer on CPU{LB_CPU}, target nginx on CPU{TARGET_CPU}, load generator on CPU{CLIENT_CPU}", ""]
    lines += ["Negotiated (checked with the stdlib `ssl`, curl and `openssl s_client` before the runs; "
              "47 B and 16 KiB bodies compared byte for byte over HTTP/1.1 and HTTP/2):", ""]
    lines += [f"* {names[k]}: " + "; ".join(checks.get(k, [])) for k, _ in kinds]
    lines += ["", "One figure per round. req/s: completed 2xx requests per second (client's count). "
              "p50/p99: request latency in ms (wrk's histogram; h2load's per-request log). "
              "LB µs/req: balancer utime+stime / requests (nginx: master+worker); target and client likewise. "
              "LB ctx sw/req: voluntary+involuntary context switches of the balancer's serving process per request. "
              "CPU busy: whole-core busy share during the cell, in brackets the part not charged to the "
              "balancer+target (CPU0) or the load generator (CPU1), i.e. other users of this shared machine. conns: client connections accepted by the balancer "
              "per cell / upstream connections the target accepted (kernel PassiveOpens and the target's "
              "stub_status; machine-wide, so ±a few).", ""]
    head = ["load", "balancer", "req/s", "× nginx", "p50 ms", "p99 ms", "LB µs/req", "target µs/req",
            "client µs/req", "LB ctx sw/req", "conns client/upstream", "CPU0 / CPU1 busy (others')", "checks"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for load in loads:
        base = results.get((load.key, "nginx"))
        for kind, label in kinds:
            rs = results.get((load.key, kind))
            if not rs:
                continue
            med = sorted(r.rps for r in rs)[len(rs) // 2]
            ratio = f"{sum(r.rps for r in rs) / sum(r.rps for r in base):.2f}" if base else "–"
            errs = sum(r.errors for r in rs)
            bad = sum(r.non2xx for r in rs)
            check = "ok" if not errs and not bad and all(r.body_ok for r in rs) else \
                f"**{errs} errors, {bad} non-2xx{', body size wrong' if not all(r.body_ok for r in rs) else ''}**"
            lines.append("| " + " | ".join([
                load.label if kind == kinds[0][0] else "", label,
                fmt_cell(rs, "rps", ".0f"), ratio, fmt_cell(rs, "p50_ms", ".2f"), fmt_cell(rs, "p99_ms", ".2f"),
                fmt_cell(rs, "lb_us", ".1f"), fmt_cell(rs, "target_us", ".1f"),
                fmt_cell(rs, "client_us", ".0f"), fmt_cell(rs, "ctx_per_req", ".2f"),
                ", ".join(f"{r.client_conns}/{r.upstream_conns}" for r in rs),
                ", ".join(f"{100 * r.cpu0:.0f}/{100 * r.cpu1:.0f}% ({100 * r.other0:.0f}/{100 * r.other1:.0f})"
                          for r in rs), check]) + " |")
        _ = med
    lines += ["", "× nginx is the ratio of summed req/s over the rounds. Client bytes per request (headers + body): "
              + "; ".join(f"{ld.key} " + "/".join(f"{results[(ld.key, k)][0].bytes_per_req:.0f}"
                                                   for k, _ in kinds if (ld.key, k) in results) for ld in loads)
              + f" ({'/'.join(k for k, _ in kinds)}).", "", "Commands:", ""]
    for kind, label in kinds:
        if kind in balancers:
            lines.append(f"* {label}: `{balancers[kind].pretty_command()}`")
    lines.append("* target: `taskset -c 0 nginx -p TMP -c TMP/nginx.conf` (1 worker, sendfile, keepalive_requests 1e7)")
    for load in loads:
        lines.append(f"* {load.key}: `{load.pretty()}`")
    lines += ["", f"Total run time {time.monotonic() - started:.0f} s."]
    if profile:
        lines += ["", "### Profile: albatross under the HTTP/1.1 47 B keep-alive load", "", "```", *profile, "```"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

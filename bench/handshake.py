#!/usr/bin/env python3
"""TLS handshake cost and idle-connection memory: albatross against C references.

Method: the server is pinned to CPU0 (``taskset -c 0``), the load
generator to CPU1 (``taskset -c 1``). Server CPU per connection is the change in
utime+stime from /proc/PID/stat over a run divided by the connections the client made (one
serial client). Memory per idle connection is the server's RSS change while N established
TLS 1.3 connections sit idle, divided by N.

Servers, side by side: ``openssl s_server -www`` (C baseline for CPU), nginx (1 worker; C
event-driven reference, and the memory reference because s_server is iterative), and
``albatross demo`` on uvloop and on plain asyncio.

    .venv/bin/python bench/handshake.py [--seconds N] [--quick] [--connections N]

Only loopback is used. Every process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from procstat import cpu_busy, cpu_ticks, free_port, nginx_conf, only_worker, rss_kib, terminate  # bench/ is on sys.path when a script runs

HOST = "127.0.0.1"
SERVER_CPU = "0"
CLIENT_CPU = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALBATROSS = os.path.join(os.path.dirname(sys.executable), "albatross")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

TLS13_SUITE = "TLS_AES_128_GCM_SHA256"
TLS12_CIPHER_EC = "ECDHE-ECDSA-AES128-GCM-SHA256"


# --------------------------------------------------------------------------- certificates

def make_certificates(directory: str) -> dict[str, tuple[str, str]]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    out = {}
    now = dt.datetime.now(dt.timezone.utc)
    for kind, key in (("ecdsa", ec.generate_private_key(ec.SECP256R1())),
                      ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(key, hashes.SHA256()))
        crt_path = os.path.join(directory, f"{kind}.crt")
        key_path = os.path.join(directory, f"{kind}.key")
        with open(crt_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        out[kind] = (crt_path, key_path)
    return out


# --------------------------------------------------------------------------- /proc helpers

def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not ready")


# --------------------------------------------------------------------------- servers

@dataclass
class Server:
    label: str
    kind: str  # s_server | nginx | albatross-uvloop | albatross-asyncio
    cert: tuple[str, str]
    workdir: str
    proc: subprocess.Popen | None = None
    port: int = 0
    command: list[str] = field(default_factory=list)
    worker: int = 0  # pid that does the TLS work (nginx: the worker)

    def start(self) -> None:
        crt, key = self.cert
        log = open(os.path.join(self.workdir, f"{self.kind}.log"), "wb")
        if self.kind == "s_server":
            self.port = free_port()
            self.command = ["taskset", "-c", SERVER_CPU, "openssl", "s_server", "-accept", str(self.port),
                            "-cert", crt, "-key", key, "-www", "-quiet"]
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            wait_port(self.port, self.proc)
            self.worker = self.proc.pid
        elif self.kind == "nginx":
            self.port = free_port()
            prefix = tempfile.mkdtemp(prefix="nginx-", dir=self.workdir)
            conf = os.path.join(prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(nginx_conf(NGINX_HTTP.format(host=HOST, port=self.port, crt=crt, key=key), prefix))
            self.command = ["taskset", "-c", SERVER_CPU, NGINX, "-p", prefix, "-c", conf]
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            wait_port(self.port, self.proc)
            self.worker = only_worker(self.proc.pid, "nginx")
        else:
            self.command = ["taskset", "-c", SERVER_CPU, ALBATROSS, "demo", "--https-port", "0",
                            "--certificate", crt, key, "--idle-timeout", "900", "--client-keep-alive", "900",
                            "--handshake-timeout", "60", "--log-level", "WARNING"]
            if self.kind == "albatross-asyncio":
                self.command.append("--no-uvloop")
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=dict(os.environ, SSLKEYLOGFILE=""))
            deadline = time.monotonic() + 30
            pattern = re.compile(r"albatross: listening https \S+ (\d+)")
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"albatross exited early: {open(log.name).read()[-2000:]}")
                m = pattern.search(open(log.name, errors="replace").read())
                if m:
                    self.port = int(m.group(1))
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("albatross did not report its port")
                time.sleep(0.05)
            self.worker = self.proc.pid
        warm_up(self.port)

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return sorted({self.proc.pid, self.worker})

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        terminate(self.proc, self.worker if self.kind == "nginx" else 0)

    def pretty_command(self) -> str:
        cmd = [os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in self.command]
        cmd = [re.sub(r"^/tmp/[^ ]*/", "", c) for c in cmd]
        cmd = [re.sub(r"^nginx-\w+$", "TMPDIR", c) for c in cmd]
        cmd = ["PORT" if c == str(self.port) and self.kind == "s_server" else c for c in cmd]
        return " ".join(cmd)


NGINX_HTTP = """\
    keepalive_timeout 900s;
    client_header_timeout 900s;
    server {{
        listen {host}:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "ok\\n"; }}
    }}
"""


def client_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def warm_up(port: int, n: int = 20) -> None:
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    for _ in range(n):
        with socket.create_connection((HOST, port), timeout=5) as s, ctx.wrap_socket(s, server_hostname="localhost"):
            pass


# --------------------------------------------------------------------------- load generators

@dataclass
class Load:
    name: str           # row label
    cert: str           # ecdsa | rsa
    tool: str           # s_time | pyresume
    args: list[str]     # s_time arguments after -connect
    resumed: bool

    def command(self, port: int, seconds: int) -> list[str]:
        if self.tool == "s_time":
            return ["taskset", "-c", CLIENT_CPU, "openssl", "s_time", "-connect", f"{HOST}:{port}",
                    "-time", str(seconds), *self.args]
        return ["taskset", "-c", CLIENT_CPU, sys.executable, os.path.abspath(__file__), "--_resume-client",
                str(port), str(seconds)]

    def pretty(self) -> str:
        if self.tool == "s_time":
            return "taskset -c 1 openssl s_time -connect 127.0.0.1:PORT -time S " + " ".join(self.args)
        return "taskset -c 1 python bench/handshake.py --_resume-client PORT S  (ssl module, TLS 1.3, session=)"


LOADS = [
    Load("TLS 1.3 full, ECDSA P-256", "ecdsa", "s_time",
         ["-new", "-tls1_3", "-ciphersuites", TLS13_SUITE], False),
    Load("TLS 1.3 resumed (PSK+ECDHE), ECDSA", "ecdsa", "pyresume", [], True),
    Load("TLS 1.3 full + 1 GET, ECDSA", "ecdsa", "s_time",
         ["-new", "-tls1_3", "-ciphersuites", TLS13_SUITE, "-www", "/"], False),
    Load("TLS 1.3 resumed + 1 GET, ECDSA", "ecdsa", "s_time",
         ["-reuse", "-tls1_3", "-ciphersuites", TLS13_SUITE, "-www", "/"], True),
    Load("TLS 1.2 full, ECDSA P-256", "ecdsa", "s_time",
         ["-new", "-tls1_2", "-cipher", TLS12_CIPHER_EC], False),
    Load("TLS 1.2 resumed (ticket), ECDSA", "ecdsa", "s_time",
         ["-reuse", "-tls1_2", "-cipher", TLS12_CIPHER_EC], True),
    Load("TLS 1.3 full, RSA-2048", "rsa", "s_time",
         ["-new", "-tls1_3", "-ciphersuites", TLS13_SUITE], False),
]


@dataclass
class Result:
    conns: int
    reused: int
    cpu_s: float
    wall_s: float
    bytes_per_conn: int = 0
    foreign: float = 0.0  # share of CPU0 busy with something other than the server during the run

    @property
    def us_per_conn(self) -> float:
        return 1e6 * self.cpu_s / self.conns if self.conns else float("nan")


def run_load(server: Server, load: Load, seconds: int) -> Result:
    t0 = time.monotonic()
    c0 = cpu_ticks(server.pids)
    b0, t0_jiffies = cpu_busy(SERVER_CPU)
    out = subprocess.run(load.command(server.port, seconds), capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    c1 = cpu_ticks(server.pids)
    b1, t1_jiffies = cpu_busy(SERVER_CPU)
    wall = time.monotonic() - t0
    # Busy jiffies on CPU0 not charged to the server (other users' work; also softirq for loopback).
    foreign = max(0, (b1 - b0) - (c1 - c0)) / max(1, t1_jiffies - t0_jiffies)
    if load.tool == "s_time":
        # The last "N connections in T real seconds" line is the timed phase.
        m = re.findall(r"(\d+) connections in (\d+) real seconds", out)
        if not m:
            raise RuntimeError(f"s_time output not understood:\n{out[-1500:]}")
        conns = int(m[-1][0])
        b = re.findall(r"real seconds, (\d+) bytes read per connection", out)
        nbytes = int(b[-1]) if b else 0
        reused = 0
        if load.resumed:
            # After "starting", s_time prints one character per connection: r = session reused.
            progress = re.search(r"starting\n([r*]*)", out)
            reused = progress.group(1).count("r") if progress else 0
    else:
        m = re.search(r"connections=(\d+) reused=(\d+)", out)
        if not m:
            raise RuntimeError(f"resume client output not understood:\n{out[-1500:]}")
        conns, reused = int(m.group(1)), int(m.group(2))
        nbytes = 0
    return Result(conns, reused, (c1 - c0) / CLK_TCK, wall, nbytes, foreign)


def resume_client(port: int, seconds: float) -> None:
    """TLS 1.3 resumption load: one full handshake (reading the response so the tickets
    arrive), then handshakes with that session until the time is up. Prints counts."""
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            try:
                while s.recv(65536):
                    pass
            except (ssl.SSLError, OSError):
                pass
            session = s.session
    conns = reused = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.create_connection((HOST, port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                reused += s.session_reused
        conns += 1
    print(f"connections={conns} reused={reused}")


# --------------------------------------------------------------------------- memory

def hold_client(port: int, n: int) -> None:
    """Open n TLS 1.3 connections (full handshakes), report, then hold them until stdin closes."""
    ctx = client_context(ssl.TLSVersion.TLSv1_3)
    held = []
    for _ in range(n):
        raw = socket.create_connection((HOST, port), timeout=30)
        held.append(ctx.wrap_socket(raw, server_hostname="localhost"))
    print(f"ready {len(held)}", flush=True)
    sys.stdin.read()
    for s in held:
        s.close()


def measure_memory(server: Server, n: int) -> dict:
    pid = server.worker
    # Warm-up: a small batch opened and closed so one-off allocations are not charged to N.
    for count in (min(100, n),):
        p = subprocess.Popen(["taskset", "-c", CLIENT_CPU, sys.executable, os.path.abspath(__file__),
                              "--_hold-client", str(server.port), str(count)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        p.stdout.readline()
        p.stdin.close()
        p.wait(timeout=30)
    time.sleep(1.0)
    rss0, fd0 = rss_kib(pid), fd_count(pid)
    p = subprocess.Popen(["taskset", "-c", CLIENT_CPU, sys.executable, os.path.abspath(__file__),
                          "--_hold-client", str(server.port), str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"hold client failed: {line!r}")
        time.sleep(1.5)  # let the server finish the last handshakes (it writes tickets after Finished)
        rss1, fd1 = rss_kib(pid), fd_count(pid)
    finally:
        p.stdin.close()
        p.wait(timeout=60)
    return {"n": n, "rss0": rss0, "rss1": rss1, "fds": fd1 - fd0, "kib": (rss1 - rss0) / n}


# --------------------------------------------------------------------------- checks

def s_client_reconnect(port: int, version: str) -> str:
    """openssl s_client -reconnect: 1 full + 5 reconnects with the first session."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"{HOST}:{port}", "-reconnect", f"-{version}"],
                         input="", capture_output=True, text=True, timeout=30).stdout
    return f"{out.count(chr(10) + 'Reused,')}/5"


# --------------------------------------------------------------------------- main

SERVER_KINDS = [("s_server", "`openssl s_server -www`"), ("nginx", "nginx (1 worker)"),
                ("albatross-uvloop", "albatross uvloop"), ("albatross-asyncio", "albatross asyncio")]


def machine() -> list[str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    return [f"nproc {os.cpu_count()}, CPU {model}", f"{openssl}; Python {sys.version.split()[0]} "
            f"(ssl: {ssl.OPENSSL_VERSION}); {nginx}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=None, help="seconds per CPU row and server (default 5; 1 with --quick)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over all rows and servers (default 1)")
    ap.add_argument("--quick", action="store_true", help="short runs, no nginx CPU column, fewer idle connections")
    ap.add_argument("--connections", type=int, default=None, help="idle connections for memory (default 2000; 300 quick)")
    ap.add_argument("--_resume-client", nargs=2, type=float, help=argparse.SUPPRESS)
    ap.add_argument("--_hold-client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._resume_client:
        resume_client(int(args._resume_client[0]), args._resume_client[1])
        return 0
    if args._hold_client:
        hold_client(*args._hold_client)
        return 0

    seconds = args.seconds or (1 if args.quick else 5)
    n_idle = args.connections or (300 if args.quick else 2000)
    repeat = max(1, args.repeat)
    for tool in ("taskset", "openssl"):
        if not shutil.which(tool):
            print(f"handshake.py: {tool} not found", file=sys.stderr)
            return 2
    have_nginx = os.access(NGINX, os.X_OK)
    if os.cpu_count() < 2:
        print("handshake.py: needs 2 CPUs (server on 0, client on 1)", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n_idle + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # keep this script off the server core
    # SIGTERM/SIGHUP unwind like Ctrl-C so the finally below stops every server.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    kinds = [k for k in SERVER_KINDS if k[0] != "nginx" or (have_nginx and not args.quick)]
    workdir = tempfile.mkdtemp(prefix="albatross-bench-")
    results: dict[tuple[str, str], list[Result]] = {}
    memory: dict[str, dict] = {}
    notes: list[str] = []
    commands: dict[str, str] = {}
    reconnect: dict[str, str] = {}
    running: dict[tuple[str, str], Server] = {}
    started = time.monotonic()
    try:
        certs = make_certificates(workdir)
        # All servers run at once (idle ones cost nothing) so that each row is measured for every
        # server back to back, in rotating order: slow drift in machine load then hits all alike.
        for kind, _ in kinds:
            for cert in ("ecdsa", "rsa"):
                server = Server(kind, kind, certs[cert], workdir)
                running[(kind, cert)] = server
                server.start()
            commands[kind] = running[(kind, "ecdsa")].pretty_command()
            port = running[(kind, "ecdsa")].port
            reconnect[kind] = f"TLS 1.2 {s_client_reconnect(port, 'tls1_2')}, TLS 1.3 {s_client_reconnect(port, 'tls1_3')}"
        for rep in range(repeat):
            for i, load in enumerate(LOADS):
                order = kinds[(i + rep) % len(kinds):] + kinds[:(i + rep) % len(kinds)]
                for kind, _ in order:
                    r = run_load(running[(kind, load.cert)], load, seconds)
                    results.setdefault((load.name, kind), []).append(r)
                    print(f"  {kind:18} {load.name:36} {r.conns:6d} conns {r.wall_s:5.1f} s {r.us_per_conn:7.0f} us/conn"
                          f" {r.bytes_per_conn:5d} B/conn  cpu0 other {100 * r.foreign:3.0f}%"
                          + (f"  reused {r.reused}/{r.conns}" if load.resumed else ""), file=sys.stderr, flush=True)
        for kind, _ in kinds:
            if kind == "s_server":
                continue
            memory[kind] = m = measure_memory(running[(kind, "ecdsa")], n_idle)
            print(f"  {kind:18} memory: {m['kib']:.1f} KiB/conn over {m['n']} ({m['fds']} fds)",
                  file=sys.stderr, flush=True)
    finally:
        for server in running.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------ report
    names = dict(kinds)
    lines = [f"## TLS handshake CPU and idle memory ({seconds} s per cell, {repeat} round(s), {time.strftime('%Y-%m-%d')})", ""]
    lines += [f"* {m}" for m in machine()]
    lines += ["", "Server CPU µs per connection (utime+stime delta / connections; lower is better), "
              "one figure per repeat, total connections made in brackets. Ratios are albatross / s_server "
              "(best of the repeats).", ""]
    head = ["row"] + [names[k] for k, _ in kinds] + ["uvloop / s_server", "asyncio / s_server"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for load in LOADS:
        cells = [load.name]
        for kind, _ in kinds:
            rs = results.get((load.name, kind))
            if not rs:
                cells.append("–")
                continue
            cell = ", ".join(f"{r.us_per_conn:.0f}" for r in rs) + f" ({sum(r.conns for r in rs)})"
            reused, conns = sum(r.reused for r in rs), sum(r.conns for r in rs)
            if load.resumed and reused != conns:
                cell += f" **reused {reused}/{conns}**"
            cells.append(cell)
        base = results.get((load.name, "s_server"))
        for kind in ("albatross-uvloop", "albatross-asyncio"):
            rs = results.get((load.name, kind))
            cells.append(f"{min(r.us_per_conn for r in rs) / min(r.us_per_conn for r in base):.2f}"
                         if rs and base else "–")
        lines.append("| " + " | ".join(cells) + " |")
    shares = sorted(r.foreign for rs in results.values() for r in rs)
    if shares:
        lines += ["", f"CPU0 busy time not charged to the server during these runs (other processes, interrupts): "
                  f"median {100 * shares[len(shares) // 2]:.0f}%, max {100 * shares[-1]:.0f}%; "
                  f"load average at the end {open('/proc/loadavg').read().split()[0]}."
                  + (" The machine was not quiet: treat the numbers with extra care." if shares[-1] > 0.15 else "")]
    lines += ["", f"Memory per idle TLS 1.3 connection (ECDSA; {n_idle} connections, each after a full "
              "handshake, idle; RSS delta of the serving process / N, after the CPU rows and a 100-connection warm-up):", "",
              "| server | RSS before (KiB) | RSS with N open (KiB) | fds added | KiB per connection |",
              "|---|---|---|---|---|"]
    lines.append("| `openssl s_server` | – | – | – | not measured: iterative, serves one connection at a time |")
    for kind, label in kinds:
        if kind in memory:
            m = memory[kind]
            lines.append(f"| {label} | {m['rss0']} | {m['rss1']} | {m['fds']} | **{m['kib']:.1f}** |")
    lines += ["", "Resumption checks: every resumed cell counts resumed handshakes (s_time prints `r` per "
              "reused session, the Python client reads `SSLSocket.session_reused`); a cell is flagged if "
              "any connection was not resumed. `openssl s_client -reconnect` (1 + 5 reconnects), "
              "reconnects resumed:", ""]
    lines += [f"* {names[k]}: {reconnect.get(k, '–')}" for k, _ in kinds]
    lines += ["", "`s_time -reuse` without `-www` cannot resume TLS 1.3: it saves the session right after "
              "the handshake, before the NewSessionTicket has been read, so every connection is a full "
              "handshake (`s_client -reconnect` has the same limitation). TLS 1.3 resumption is therefore "
              "measured two ways: handshake-only with a Python `ssl` client reusing one session, and "
              "`s_time -reuse -www /` (which reads the response, and with it the tickets) paired with "
              "`s_time -new -www /` as its full-handshake counterpart.", "",
              "Commands (server on CPU0, client on CPU1; PORT chosen at run time; the RSA row uses "
              "rsa.crt/rsa.key):", ""]
    for kind, label in kinds:
        lines.append(f"* {label}: `{commands.get(kind, '?')}`")
    if "nginx" in names:
        lines.append("  (nginx.conf: worker_processes 1; listen ssl; ssl_protocols TLSv1.2 TLSv1.3; "
                     "`return 200`; keepalive/header timeouts 900 s; defaults otherwise, i.e. tickets on, no shared cache)")
    for load in LOADS:
        lines.append(f"* {load.name}: `{load.pretty()}`")
    lines.append("* idle connections: `taskset -c 1 python bench/handshake.py --_hold-client PORT N` "
                 "(blocking `ssl` sockets, TLS 1.3, held open)")
    lines += ["", f"Total run time {time.monotonic() - started:.0f} s."]
    lines += notes
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the benchmarks (Linux only): /proc readings, free ports, the nginx configuration frame."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of the processes, in clock ticks."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def cpu_busy(cpu: str) -> tuple[int, int]:
    """(busy, total) jiffies of one core, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return sum(v[:8]) - v[3] - v[4], sum(v[:8])
    return 0, 0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def nginx_conf(http: str, prefix: str) -> str:
    """A whole nginx.conf around ``http`` (the directives inside ``http {}``): one worker in the
    foreground (``user root`` when run as root), no access log, every temporary path under ``prefix``."""
    user = "user root;\n" if os.getuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {prefix}/{name};\n" for kind, name in (
        ("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"), ("scgi", "scgi")))
    return (f"{user}worker_processes 1;\ndaemon off;\nmaster_process on;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log warn;\nworker_rlimit_nofile 20000;\n"
            "events { worker_connections 10000; }\nhttp {\n    access_log off;\n" + temp + http + "}\n")


def terminate(proc: subprocess.Popen | None, worker: int = 0) -> None:  # type: ignore[type-arg]
    """SIGTERM (nginx: fast shutdown; albatross: graceful stop), SIGKILL after 5 s; then make sure
    an nginx ``worker`` is gone too."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if worker:
        try:
            os.kill(worker, signal.SIGKILL)
        except OSError:
            pass


def only_worker(master: int, label: str) -> int:
    """The pid of an nginx master's single worker (waits up to 5 s for it to start)."""
    deadline = time.monotonic() + 5
    while not children(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = children(master)
    if len(kids) != 1:
        raise RuntimeError(f"{label}: expected one worker, found {kids}")
    return kids[0]

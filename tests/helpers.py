"""Shared test helpers: real processes, real clients, readiness instead of sleeps."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of a command-line tool; under CI=true a missing tool fails the test."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it when run as root)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


class Albatross:
    """``albatross demo`` in a child process, ready once it prints its listening lines."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, expect_failure: bool = False,
                 timeout: float = 20.0, targets: int = 0, serve: str | None = None, listeners: int = 1) -> None:
        if serve is not None:  # `albatross serve CONFIG`
            cmd = [sys.executable, "-m", "albatross", "serve", serve, *args]
        else:  # `albatross demo`, by default answering with its built-in page (no targets)
            cmd = [sys.executable, "-m", "albatross", "demo", "--https-port", "0", "--address", "127.0.0.1",
                   "--targets", str(targets), *args]
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ports: dict[str, int] = {}
        if expect_failure:
            self.returncode = self.proc.wait(timeout)
            self._reader.join(timeout)
            return
        want = 2 if "--http-port" in args else listeners
        self.wait_for(lambda: len(re.findall(r"albatross: listening (\w+) \S+ (\d+)", self.log)) >= want
                      or self.proc.poll() is not None, timeout)
        self.listening: list[tuple[str, int]] = []
        for scheme, port in re.findall(r"albatross: listening (\w+) \S+ (\d+)", self.log):
            self.ports.setdefault(scheme, int(port))
            self.listening.append((scheme, int(port)))
        if self.proc.poll() is not None:
            raise RuntimeError(f"albatross exited with {self.proc.returncode}:\n{self.log}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_for(self, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting; server log:\n{''.join(self.lines)}")
                self._cond.wait(min(left, 0.2))

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def check() -> bool:
            m = re.search(pattern, "".join(self.lines))
            if m:
                found.append(m)
            return m is not None

        self.wait_for(check, timeout)
        return found[0]

    @property
    def port(self) -> int:
        return self.ports["https"]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)

    def __enter__(self) -> Albatross:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(cmd: Sequence[str], *, input: str | bytes | None = None, timeout: float = 30.0,
        check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a client to completion and capture its output as text (stdout and stderr merged)."""
    require_tool(cmd[0])
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(list(cmd), input=data if data is not None else b"", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), "")
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{result.stdout}")
    return result


def s_client(address: str, *args: str, input: str = "", timeout: float = 30.0) -> str:
    """``openssl s_client`` once; returns everything it printed."""
    return run(["openssl", "s_client", "-connect", address, *args], input=input, timeout=timeout).stdout


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=10)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def fields(text: str, *names: str) -> dict[str, str]:
    """Pick ``Name: value`` lines (as s_client prints them) out of a transcript."""
    out = {}
    for name in names:
        m = re.search(rf"^\s*{re.escape(name)}\s*:\s*(.*)$", text, re.M)
        if m:
            out[name] = m.group(1).strip()
    return out


def all_lines(text: str, pattern: str) -> list[str]:
    return re.findall(pattern, text, re.M)


def first(items: Iterable[str]) -> str:
    return next(iter(items))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def c_heap_in_use() -> int:
    """Bytes the C allocator has handed out (glibc ``mallinfo2``): OpenSSL and nghttp2 included."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):  # pragma: no cover - glibc < 2.33
        pytest.fail("needs glibc's mallinfo2 (Debian 12 has it)")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


class FakeOwner:
    """The transport side of an HTTP/1.1 server codec, in memory: what was sent, and whether the
    codec closed it. Writing after close is a failure, unless ``drop_after_close`` (the
    listener's protocols drop such writes, and a test comparing two codecs' output can say so)."""

    def __init__(self, *, drop_after_close: bool = False) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.drop_after_close = drop_after_close

    def send(self, data: bytes) -> None:
        if self.closed:
            assert self.drop_after_close, "wrote after close"
            return
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

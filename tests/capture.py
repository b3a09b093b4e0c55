"""Packet capture on loopback for the wire-level tests: dumpcap with readiness, tshark fields.

* :class:`Capture` starts ``dumpcap -i lo`` and returns once it is really capturing. dumpcap's
  ``Capturing on`` line is necessary but not sufficient: it comes before the capture is live, and
  an ``openssl s_client`` exchange started right after the line was observed missing from the
  file (only later packets were there). So :meth:`Capture.sync` is the readiness test: it sends UDP
  datagrams carrying a fresh nonce to a socket of its own (the capture filter includes them) and
  waits until the nonce shows up in the file. :meth:`Capture.stop` syncs again before SIGINT:
  loopback delivers to the capture in order, so every earlier packet is in the file by then.
  No fixed sleeps; every wait is bounded.
* :func:`tshark_fields` dissects a capture (optionally decrypting it with an NSS key log) into
  one dict per frame, each field a list of its values in order (a frame can carry several TLS
  records).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.helpers import require_tool

_AGGREGATOR = "\x1f"  # between the values of one field in one frame (never in the fields we read)


class Capture:
    """``dumpcap -i lo`` on some TCP ports (``path`` must be in an existing directory); ready once
    dumpcap says ``Capturing on`` *and* a marker datagram of ours has reached the file."""

    def __init__(self, path: Path, *ports: int, timeout: float = 20.0) -> None:
        dumpcap = require_tool("dumpcap")
        self.path = Path(path)
        self._marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._marker.bind(("127.0.0.1", 0))
        self._marker_port = self._marker.getsockname()[1]
        capture_filter = " or ".join([*(f"tcp port {p}" for p in ports), f"(udp and dst port {self._marker_port})"])
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([dumpcap, "-i", "lo", "-f", capture_filter, "-w", str(self.path)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any("Capturing on" in line for line in self.stderr):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
            ready = any("Capturing on" in line for line in self.stderr)
        if not ready:
            self._kill()
            raise AssertionError(f"dumpcap did not start capturing within {timeout} s:\n{self.log}")
        # "Capturing on" comes before the capture is live: a TLS exchange started right after the
        # line was observed missing from the file. Ready means a packet of ours is in it.
        try:
            self.sync(max(1.0, deadline - time.monotonic()))
        except AssertionError:
            self._kill()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.stderr.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self.stderr)

    def sync(self, timeout: float = 10.0) -> None:
        """Return once every packet sent before this call is in the capture file."""
        nonce = b"albatross-capture-sync-" + os.urandom(8).hex().encode()
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= next_send:  # resend: copies sent before the capture was open are lost
                self._marker.sendto(nonce, ("127.0.0.1", self._marker_port))
                next_send = now + 0.1
            if self.path.exists() and nonce in self.path.read_bytes():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"dumpcap exited early ({self.proc.returncode}):\n{self.log}")
            if now > deadline:
                raise AssertionError(f"dumpcap did not write the sync marker within {timeout} s:\n{self.log}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """Sync, then SIGINT dumpcap and wait for it to finish the file."""
        if self.proc.poll() is None:
            self.sync(timeout)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise AssertionError(f"dumpcap ignored SIGINT for {timeout} s:\n{self.log}") from None
        self._reader.join(5)
        self._marker.close()
        if self.proc.returncode != 0:
            raise AssertionError(f"dumpcap exited with {self.proc.returncode}:\n{self.log}")

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._marker.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self._kill()  # a no-op after stop()


def tshark_fields(pcap: Path, fields: Sequence[str], *, keylog: Path | None = None,
                  tls_ports: Iterable[int] = (), timeout: float = 60.0) -> list[dict[str, list[str]]]:
    """One dict per frame: field name -> its values in that frame, in order (empty list if absent).

    ``keylog`` decrypts TLS with an NSS key log; without it decryption is explicitly off, so a
    user's Wireshark preferences cannot decrypt behind the test's back. ``tls_ports`` are decoded
    as TLS whatever the heuristics think.
    """
    tshark = require_tool("tshark")
    cmd = [tshark, "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog or ''}",
           "-T", "fields", "-E", "header=n", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", f"aggregator={_AGGREGATOR}"]
    for port in tls_ports:
        cmd += ["-d", f"tcp.port=={port},tls"]
    for name in fields:
        cmd += ["-e", name]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"tshark exited with {proc.returncode}: {proc.stderr}")
    frames = []
    for line in proc.stdout.splitlines():
        values = line.split("\t")
        values += [""] * (len(fields) - len(values))
        frames.append({name: [v for v in value.split(_AGGREGATOR) if v] for name, value in zip(fields, values)})
    return frames

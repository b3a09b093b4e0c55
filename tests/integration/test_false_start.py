"""Seed rows 9, 10 and 11 on the wire: TLS False Start, key-log decryption, close_notify.

Row 9 (False Start). Headless Chromium limited to TLS 1.2 false-starts when ALPN is negotiated
(BoringSSL requires it). A capture straight between Chromium and the server does *not* show this
reliably: measured, Chromium's first request went out after the server's Finished in 8 runs of 11,
because the handshake often completes before the browser has the request ready (up to 23 ms
later), and a client that has nothing to send has nothing to send early. So Chromium talks to
:class:`FinishedHoldingRelay`, a TCP relay in front of ``albatross demo`` that holds the client's
ChangeCipherSpec/Finished flight until the client's first application-data record arrives (or
``HOLD_SECONDS`` pass) and then forwards them in one write. The server cannot send its Finished
before it has the client's, so:

* a false-starting client sends its request before the server's ChangeCipherSpec/Finished, on
  the client leg of the capture, every time;
* a client that waits for the server's Finished (no False Start) gets it only when the hold times
  out, and its request follows the server's Finished (``test_no_false_start_without_alpn`` shows
  that the relay cannot fake the result);
* the server receives the client's Finished and the early request in one segment, the case the
  design calls out: early data must be read right after ``SSL_do_handshake`` returns 1, or a
  false-starting client hangs.

Row 10: the same capture decrypts with the server's key log (``--key-log``) and, separately, with
Chromium's own (``SSLKEYLOGFILE``, which Chromium honours; ``--ssl-key-log-file`` is the flag), and
not at all without one. Row 11: ``openssl s_client`` sends ``close_notify`` at end of input and the
server answers with its own and closes without an error log.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.capture import Capture, tshark_fields
from tests.conftest import PKI, Cert
from tests.helpers import Albatross, require_tool

pytestmark = pytest.mark.browser

HOLD_SECONDS = 2.0  # how long the relay holds a client's Finished waiting for early data
CHROMIUM_TIMEOUT = 60.0

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CLOSE_NOTIFY = "0"
WARNING, FATAL = "1", "2"
H2_PREFACE_MAGIC = "PRI * HTTP/2.0"

FIELDS = (
    "frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags.fin", "tcp.flags.reset",
    "tls.record.content_type", "tls.handshake.type", "tls.handshake.random",
    "tls.alert_message.level", "tls.alert_message.desc",
    "http.request.method", "http.request.uri", "http.response.code", "http2.magic",
)

SERVER_TROUBLE = re.compile(r"\bERROR\b|Traceback|TLS error|handshake from \S+ failed|Fatal error", re.I)


# --------------------------------------------------------------------------------------------
# The relay that makes False Start visible every time


@dataclass
class RelayEvent:
    peer: str
    released_by: str  # "application data", "timeout" or "eof"
    held_records: list[int] = field(default_factory=list)
    held_for: float = 0.0


class FinishedHoldingRelay:
    """TCP relay to ``127.0.0.1:upstream`` that holds the client's CCS/Finished until its first
    application-data record (or ``hold`` seconds), then forwards them together; otherwise a
    plain byte pump in both directions."""

    def __init__(self, upstream: int, hold: float = HOLD_SECONDS) -> None:
        self.upstream = upstream
        self.hold = hold
        self.events: list[RelayEvent] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        peer = "%s:%d" % client.getpeername()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.settimeout(None)
        with self._lock:
            self._sockets += [client, upstream]
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        try:
            self._forward_holding(client, upstream, peer)
        finally:
            back.join(CHROMIUM_TIMEOUT)
            client.close()
            upstream.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _forward_holding(self, client: socket.socket, upstream: socket.socket, peer: str) -> None:
        buf = b""
        held: list[bytes] = []
        hold_started: float | None = None
        passthrough = False

        def release(reason: str) -> None:
            nonlocal held, hold_started, passthrough
            assert hold_started is not None
            upstream.sendall(b"".join(held))
            with self._lock:
                self.events.append(RelayEvent(peer, reason, [r[0] for r in held],
                                              time.monotonic() - hold_started))
            held, hold_started, passthrough = [], None, True

        try:
            while True:
                if hold_started is not None:
                    # never 0: that would make the socket non-blocking, not time out
                    client.settimeout(max(0.001, hold_started + self.hold - time.monotonic()))
                else:
                    client.settimeout(None)
                try:
                    data = client.recv(65536)
                except TimeoutError:
                    release("timeout")
                    upstream.sendall(buf)
                    buf = b""
                    continue
                if not data:
                    if hold_started is not None:
                        release("eof")
                    upstream.sendall(buf)
                    break
                if passthrough:
                    upstream.sendall(data)
                    continue
                buf += data
                while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
                    size = 5 + int.from_bytes(buf[3:5], "big")
                    record, buf = buf[:size], buf[size:]
                    if hold_started is None and record[0] == CHANGE_CIPHER_SPEC:
                        hold_started = time.monotonic()
                    if hold_started is None:
                        upstream.sendall(record)
                        continue
                    held.append(record)
                    if record[0] == APPLICATION_DATA:
                        release("application data")
                        upstream.sendall(buf)
                        buf = b""
                        break
        except OSError:
            pass
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self) -> FinishedHoldingRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Clients


def chromium_dump_dom(url: str, profile: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Headless Chromium limited to TLS 1.2, ``--dump-dom url``."""
    exe = require_tool("chromium")
    if profile.exists():
        shutil.rmtree(profile)
    profile.mkdir(parents=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--ignore-certificate-errors", "--ssl-version-max=tls1.2",
           "--host-resolver-rules=MAP a.test 127.0.0.1, MAP * ~NOTFOUND", "--dump-dom", url]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"chromium did not finish within {CHROMIUM_TIMEOUT} s:\n{err[-3000:]}") from None
    finally:
        try:  # helpers (zygote, network service) that outlived the browser: same session, same group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def cell(dom: str, name: str) -> str | None:
    m = re.search(rf'<td id="{re.escape(name)}">([^<]*)</td>', dom)
    return m.group(1) if m else None


def s_client_request(address: str, ca: Path, request: bytes, until: bytes, timeout: float = 30.0) -> bytes:
    """``openssl s_client -tls1_2``: send ``request``, read stdout until ``until`` has arrived,
    then end input, which makes s_client send close_notify and exit. Returns stdout."""
    exe = require_tool("openssl")
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, "s_client", "-tls1_2", "-connect", address, "-servername", "a.test",
                             "-CAfile", str(ca), "-verify_return_error", "-quiet", "-no_ign_eof", "-nocommands"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
    assert proc.stdin is not None and proc.stdout is not None
    output = bytearray()
    got = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):
            output.extend(chunk)
            if until in output:
                got.set()
        got.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.stdin.write(request)
        proc.stdin.flush()
        if not got.wait(timeout) or until not in output:
            errors.seek(0)
            raise AssertionError(f"no {until!r} from the server within {timeout} s:\n{bytes(output)!r}\n"
                                 f"{errors.read().decode(errors='replace')}")
        proc.stdin.close()  # end of input: close_notify
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    errors.seek(0)
    stderr = errors.read().decode(errors="replace")
    errors.close()
    assert proc.returncode == 0, f"s_client exited with {proc.returncode}:\n{bytes(output)!r}\n{stderr}"
    return bytes(output)


# --------------------------------------------------------------------------------------------
# Reading the capture


@dataclass
class Record:
    frame: int
    from_client: bool
    content_type: int


def records(frames: list[dict[str, list[str]]], stream: str, server_port: int) -> list[Record]:
    """The TLS records of one TCP stream in wire order (frame, then position in the frame)."""
    out = []
    for f in frames:
        if f["tcp.stream"] == [stream]:
            from_client = f["tcp.dstport"] == [str(server_port)]
            out += [Record(int(f["frame.number"][0]), from_client, int(t)) for t in f["tls.record.content_type"]]
    return out


def streams_to(frames: list[dict[str, list[str]]], server_port: int) -> list[str]:
    seen: list[str] = []
    for f in frames:
        if f["tcp.dstport"] == [str(server_port)] and f["tcp.stream"] and f["tcp.stream"][0] not in seen:
            seen.append(f["tcp.stream"][0])
    return seen


def first_index(recs: list[Record], *, from_client: bool, content_type: int) -> int | None:
    return next((i for i, r in enumerate(recs) if r.from_client == from_client and r.content_type == content_type),
                None)


def frame(frames: list[dict[str, list[str]]], number: int) -> dict[str, list[str]]:
    return next(f for f in frames if f["frame.number"] == [str(number)])


def is_navigation_request(f: dict[str, list[str]], h2: bool) -> bool:
    if h2:
        return any(m.startswith(H2_PREFACE_MAGIC) for m in f["http2.magic"])
    return f["http.request.method"][:1] == ["GET"] and f["http.request.uri"][:1] == ["/"]


def early_request(frames: list[dict[str, list[str]]], server_port: int, h2: bool) -> tuple[str, Record, list[Record]]:
    """The stream that carried the page request, its first client application-data record and
    all its records. The request must be decrypted for this to find it."""
    for stream in streams_to(frames, server_port):
        recs = records(frames, stream, server_port)
        i = first_index(recs, from_client=True, content_type=APPLICATION_DATA)
        if i is not None and is_navigation_request(frame(frames, recs[i].frame), h2):
            return stream, recs[i], recs
    summary = [(f["frame.number"], f["tcp.srcport"], f["tls.record.content_type"], f["http.request.method"],
                f["http2.magic"]) for f in frames if f["tls.record.content_type"]]
    raise AssertionError(f"no connection to port {server_port} whose first client record decrypts to "
                         f"{'the HTTP/2 preface' if h2 else 'GET /'}: {summary}")


def describe(recs: list[Record]) -> str:
    names = {20: "CCS", 21: "Alert", 22: "Handshake", 23: "AppData"}
    return ", ".join(f"#{r.frame} {'C' if r.from_client else 'S'}:{names.get(r.content_type, r.content_type)}"
                     for r in recs)


def server_sent_finished_after_request(recs: list[Record], request: Record) -> bool:
    ccs = first_index(recs, from_client=False, content_type=CHANGE_CIPHER_SPEC)
    return ccs is not None and recs.index(request) < ccs


def key_log_randoms(path: Path) -> set[str]:
    return {line.split()[1].lower() for line in path.read_text().splitlines() if line.startswith("CLIENT_RANDOM ")}


def client_random(frames: list[dict[str, list[str]]], stream: str, server_port: int) -> str:
    for f in frames:
        if f["tcp.stream"] == [stream] and f["tcp.dstport"] == [str(server_port)] and "1" in f["tls.handshake.type"]:
            return f["tls.handshake.random"][0].replace(":", "").lower()
    raise AssertionError(f"no ClientHello on stream {stream}")


# --------------------------------------------------------------------------------------------
# Row 9 and row 10


@dataclass
class Run:
    server: Albatross
    relay: FinishedHoldingRelay
    browser: subprocess.CompletedProcess[str]
    pcap: Path
    server_keys: Path
    client_keys: Path


def run_chromium_through_relay(tmp_path: Path, cert: Cert, alpn: str) -> Run:
    server_keys, client_keys, pcap = tmp_path / "server.keys", tmp_path / "client.keys", tmp_path / "fs.pcapng"
    with Albatross(*cert.args(), "--alpn", alpn, "--key-log", str(server_keys)) as server, \
            FinishedHoldingRelay(server.port) as relay, \
            Capture(pcap, relay.port, server.port) as capture:
        browser = chromium_dump_dom(f"https://a.test:{relay.port}/", tmp_path / "chromium-profile",
                                    {"SSLKEYLOGFILE": str(client_keys)})
        capture.stop()
    return Run(server, relay, browser, pcap, server_keys, client_keys)


@pytest.mark.parametrize(("alpn", "h2"), [
    pytest.param("http/1.1", False, id="http1.1"),
    pytest.param("h2,http/1.1", True, id="h2"),  # the default ALPN; h2 is chosen
])
def test_false_start_and_key_logs(tmp_path: Path, site_ecdsa: Cert, alpn: str, h2: bool) -> None:
    run = run_chromium_through_relay(tmp_path, site_ecdsa, alpn)
    server, relay = run.server, run.relay
    ports = (relay.port, server.port)
    context = f"relay: {relay.events}\nserver log:\n{server.log}\nchromium stderr (tail):\n{run.browser.stderr[-2000:]}"

    # Row 10: the server-side key log is loud.
    assert re.search(r"WARNING albatross\.tls: TLS KEY LOGGING IS ON: session secrets are written to "
                     + re.escape(str(run.server_keys)), server.log), server.log

    # Row 9 on the client leg (Chromium <-> relay), decrypted with the server's key log: the
    # client's first application-data record, which is the page request, precedes the server's
    # ChangeCipherSpec/Finished on the same TCP stream.
    by_server = tshark_fields(run.pcap, FIELDS, keylog=run.server_keys, tls_ports=ports)
    stream, early, recs = early_request(by_server, relay.port, h2)
    assert server_sent_finished_after_request(recs, early), \
        f"no False Start: stream {stream} on the client leg: {describe(recs)}\n{context}"
    client_ccs = first_index(recs, from_client=True, content_type=CHANGE_CIPHER_SPEC)
    assert client_ccs is not None and client_ccs < recs.index(early), describe(recs)  # a full handshake

    # ...and on the server leg (relay <-> albatross) the request reached the server before it
    # sent its Finished, and the server answered it.
    s_stream, s_early, s_recs = early_request(by_server, server.port, h2)
    assert server_sent_finished_after_request(s_recs, s_early), f"server leg: {describe(s_recs)}\n{context}"
    assert first_index(s_recs, from_client=False, content_type=APPLICATION_DATA) is not None, \
        f"the server sent no application data on the server leg: {describe(s_recs)}\n{context}"

    # Row 9: the page was served, over TLS 1.2 and the negotiated protocol.
    assert run.browser.returncode == 0, context
    dom = run.browser.stdout
    assert cell(dom, "tls-version") == "TLSv1.2", f"page not served as expected:\n{dom[:2000]}\n{context}"
    assert cell(dom, "alpn") == ("h2" if h2 else "http/1.1"), dom
    assert cell(dom, "http-version") == ("2" if h2 else "1.1"), dom
    assert cell(dom, "sni") == "a.test", dom

    # Row 10: Chromium wrote its own key log (SSLKEYLOGFILE), and it decrypts the same capture
    # by itself; both key logs hold this connection's client random.
    assert run.client_keys.exists() and run.client_keys.stat().st_size > 0, "chromium ignored SSLKEYLOGFILE"
    random = client_random(by_server, stream, relay.port)
    assert random in key_log_randoms(run.server_keys), f"server key log lacks CLIENT_RANDOM {random}"
    assert random in key_log_randoms(run.client_keys), f"client key log lacks CLIENT_RANDOM {random}"
    by_client = tshark_fields(run.pcap, FIELDS, keylog=run.client_keys, tls_ports=ports)
    c_stream, c_early, c_recs = early_request(by_client, relay.port, h2)
    assert (c_stream, c_early) == (stream, early)
    assert server_sent_finished_after_request(c_recs, c_early)

    # Control: without a key log nothing decrypts, so the checks above rest on the key logs.
    plain = tshark_fields(run.pcap, FIELDS, tls_ports=ports)
    assert any(str(APPLICATION_DATA) in f["tls.record.content_type"] for f in plain)
    assert not any(f["http.request.method"] or f["http2.magic"] or f["http.response.code"] for f in plain)

    # The relay saw the early record (it does not decide the assertions above; the capture does).
    assert any(e.released_by == "application data" for e in relay.events), relay.events

    trouble = [line for line in server.log.splitlines() if SERVER_TROUBLE.search(line)]
    assert not trouble, f"server logged trouble:\n{server.log}"


def test_no_false_start_without_alpn(tmp_path: Path, site_ecdsa: Cert) -> None:
    """Control for the relay: without ALPN Chromium waits for the server's Finished (it is
    released only when the hold times out), so its request follows the server's Finished."""
    run = run_chromium_through_relay(tmp_path, site_ecdsa, "")
    relay = run.relay
    frames = tshark_fields(run.pcap, FIELDS, keylog=run.server_keys, tls_ports=(relay.port, run.server.port))
    stream, early, recs = early_request(frames, relay.port, h2=False)
    assert not server_sent_finished_after_request(recs, early), f"False Start without ALPN: {describe(recs)}"
    assert first_index(recs, from_client=False, content_type=CHANGE_CIPHER_SPEC) is not None
    assert any(e.released_by == "timeout" and e.held_for >= HOLD_SECONDS * 0.9 for e in relay.events), relay.events
    assert cell(run.browser.stdout, "tls-version") == "TLSv1.2", run.browser.stdout[:2000]
    assert cell(run.browser.stdout, "alpn") == "-", run.browser.stdout[:2000]
    trouble = [line for line in run.server.log.splitlines() if SERVER_TROUBLE.search(line)]
    assert not trouble, f"server logged trouble:\n{run.server.log}"


# --------------------------------------------------------------------------------------------
# Row 11


def test_close_notify_answered(tmp_path: Path, pki: PKI, site_ecdsa: Cert) -> None:
    keys, pcap = tmp_path / "server.keys", tmp_path / "close.pcapng"
    with Albatross(*site_ecdsa.args(), "--alpn", "http/1.1", "--key-log", str(keys)) as server, \
            Capture(pcap, server.port) as capture:
        # keep-alive: the server has no reason of its own to close the connection
        reply = s_client_request(server.address, pki.ca_pem, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
                                 until=b"</html>")
        capture.stop()
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:300]

    frames = tshark_fields(pcap, FIELDS, keylog=keys, tls_ports=(server.port,))
    streams = streams_to(frames, server.port)
    assert len(streams) == 1, streams
    stream_frames = [f for f in frames if f["tcp.stream"] == streams[:1]]
    peer_port = next(f["tcp.srcport"][0] for f in stream_frames if f["tcp.dstport"] == [str(server.port)])
    summary = [(f["frame.number"][0], "C" if f["tcp.srcport"] == [peer_port] else "S", f["tls.record.content_type"],
                f["tls.alert_message.level"], f["tls.alert_message.desc"], f["tcp.flags.fin"],
                f["tcp.flags.reset"]) for f in stream_frames]

    def alerts(from_client: bool) -> list[tuple[int, str, str]]:
        out = []
        for f in stream_frames:
            if (f["tcp.srcport"] == [peer_port]) == from_client and str(ALERT) in f["tls.record.content_type"]:
                # decrypted: every alert record must have a level and a description
                assert f["tls.alert_message.level"] and f["tls.alert_message.desc"], f"alert not decrypted: {f}"
                out += [(int(f["frame.number"][0]), lv, d)
                        for lv, d in zip(f["tls.alert_message.level"], f["tls.alert_message.desc"])]
        return out

    client_alerts, server_alerts = alerts(True), alerts(False)
    assert client_alerts and client_alerts[0][1:] == (WARNING, CLOSE_NOTIFY), f"no client close_notify: {summary}"
    assert len(server_alerts) == 1, f"expected exactly the server's answering close_notify: {summary}"
    assert server_alerts[0][1:] == (WARNING, CLOSE_NOTIFY), summary
    assert server_alerts[0][0] > client_alerts[0][0], f"the server closed first: {summary}"
    assert all(level != FATAL for _, level, _ in client_alerts + server_alerts), summary
    assert any(f["http.response.code"] == ["200"] for f in stream_frames), summary

    def server_flag(name: str) -> list[int]:
        return [int(f["frame.number"][0]) for f in stream_frames
                if f["tcp.srcport"] == [str(server.port)] and f[name] in (["1"], ["True"])]

    assert server_flag("tcp.flags.fin") and min(server_flag("tcp.flags.fin")) >= server_alerts[0][0], \
        f"the server did not close with FIN after its close_notify: {summary}"
    assert not server_flag("tcp.flags.reset"), f"the server reset the connection: {summary}"

    peer = f"127.0.0.1:{peer_port}"
    trouble = [line for line in server.log.splitlines()
               if SERVER_TROUBLE.search(line)
               or (peer in line and re.search(r"error|fail|went away|timed out", line, re.I))]
    assert not trouble, f"server log for a clean close:\n{server.log}"

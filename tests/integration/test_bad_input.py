"""Bad input on the TLS port and bad TLS configuration: a clear error, and nobody else disturbed.

Every connection-level case runs while a second, healthy client keeps its keep-alive
connection open across the bad one; that client must still be served afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import struct

import pytest

from tests.helpers import Albatross, connect


@pytest.fixture()
def server(site_rsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--handshake-timeout", "1") as proc:
        yield proc


class HealthyClient:
    """A keep-alive HTTPS client that must keep working while other connections misbehave."""

    def __init__(self, port: int) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(connect(port), server_hostname="a.test")

    def get(self) -> bytes:
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = b""
        while b"\r\n\r\nok\n" not in data:
            chunk = self.sock.recv(4096)
            assert chunk, f"healthy connection closed: {data!r}"
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def healthy(server: Albatross):  # type: ignore[no-untyped-def]
    client = HealthyClient(server.port)
    assert client.get().startswith(b"HTTP/1.1 200 OK")
    yield client
    assert client.get().startswith(b"HTTP/1.1 200 OK"), "a bad connection disturbed a healthy one"
    client.close()
    assert "Traceback" not in server.log


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def client_hello_record(body: bytes, *, version: bytes = b"\x03\x01") -> bytes:
    return b"\x16" + version + struct.pack("!H", len(body)) + body


def test_plain_http_on_the_tls_port_gets_a_plain_400(server: Albatross, healthy: HealthyClient) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"The plain HTTP request was sent to HTTPS port" in reply
    line = server.wait_for_log(r"plain HTTP request on TLS port from 127\.0\.0\.1:\d+")
    assert line


def test_garbage_client_hello_gets_an_alert(server: Albatross, healthy: HealthyClient) -> None:
    # A handshake record whose ClientHello body is nonsense.
    with connect(server.port) as sock:
        sock.sendall(client_hello_record(b"\x01\x00\x00\x05" + os.urandom(5)))
        reply = read_all(sock)
    assert reply[:1] == b"\x15", f"expected a TLS alert record, got {reply!r}"
    assert reply[5:6] == b"\x02"  # fatal
    server.wait_for_log(r"TLS handshake from 127\.0\.0\.1:\d+ failed: ")


def test_non_tls_binary_garbage_gets_an_alert(server: Albatross, healthy: HealthyClient) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"\x80\x01\x02\x03" + os.urandom(60))
        reply = read_all(sock)
    assert reply == b"" or reply[:1] == b"\x15"
    server.wait_for_log(r"TLS handshake from 127\.0\.0\.1:\d+ failed: ")


def test_truncated_client_hello_times_out(server: Albatross, healthy: HealthyClient) -> None:
    # A record header that promises 512 bytes, and only 10 of them: the handshake stalls.
    with connect(server.port) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc" + os.urandom(6))
        sock.settimeout(15)
        reply = read_all(sock)
    assert reply == b""  # closed by the server, without a word: the client never finished
    server.wait_for_log(r"TLS handshake from 127\.0\.0\.1:\d+ timed out after 1 s")


def test_silent_client_times_out(server: Albatross, healthy: HealthyClient) -> None:
    with connect(server.port) as sock:
        sock.settimeout(15)
        assert read_all(sock) == b""
    server.wait_for_log(r"TLS handshake from 127\.0\.0\.1:\d+ timed out")


def test_client_vanishing_mid_handshake_is_logged(server: Albatross, healthy: HealthyClient) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    with connect(server.port) as sock:
        sock.sendall(outgoing.read())  # a real ClientHello, then the client is gone
        sock.recv(1)  # wait until the server answered with its ServerHello
    server.wait_for_log(r"client 127\.0\.0\.1:\d+ went away during the TLS handshake")


def test_http2_garbage_after_handshake_only_costs_that_connection(server: Albatross, healthy: HealthyClient) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with ctx.wrap_socket(connect(server.port), server_hostname="a.test") as sock:
        assert sock.selected_alpn_protocol() == "h2"
        sock.sendall(b"this is not an HTTP/2 connection preface\r\n\r\n" * 4)
        sock.settimeout(10)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ssl.SSLError, ConnectionResetError):
            pass
    assert b"\x00\x00\x00\x07" in data or data  # GOAWAY (type 7) or at least SETTINGS before closing


# -- startup errors -------------------------------------------------------------------------------


def startup_error(*args: str) -> str:
    proc = Albatross(*args, expect_failure=True)
    assert proc.returncode == 2, proc.log
    assert "Traceback" not in proc.log
    return proc.log


def test_certificate_that_does_not_match_its_key(site_rsa, other_rsa) -> None:  # type: ignore[no-untyped-def]
    log = startup_error("--certificate", str(site_rsa.cert), str(other_rsa.key))
    assert f"albatross: error: {other_rsa.key}: private key does not match certificate {site_rsa.cert}" in log


def test_unreadable_certificate(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "missing.pem"
    log = startup_error("--certificate", str(missing), str(site_rsa.key))
    assert f"albatross: error: {missing}: cannot read certificate: No such file or directory" in log


def test_not_a_certificate(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("hello\n")
    log = startup_error("--certificate", str(bogus), str(site_rsa.key))
    assert f"albatross: error: {bogus}: not a PEM certificate chain" in log


def test_expired_certificate(pki) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.timezone.utc)
    old = pki.ca.issue_cert("old.test", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    cert, key = pki.directory / "old.pem", pki.directory / "old.key"
    old.cert_chain_pems[0].write_to_path(str(cert))
    old.private_key_pem.write_to_path(str(key))
    log = startup_error("--certificate", str(cert), str(key))
    assert f"albatross: error: {cert}: certificate expired on " in log


def test_corrupt_ticket_key_file(tmp_path, site_rsa) -> None:  # type: ignore[no-untyped-def]
    keys = tmp_path / "ticket-keys"
    keys.write_text("AAAA\n")
    log = startup_error(*site_rsa.args(), "--ticket-keys", str(keys))
    assert f"albatross: error: {keys}: line 1: a key must be 80 bytes, this one is 3" in log


def test_unknown_policy_has_a_hint(site_rsa) -> None:  # type: ignore[no-untyped-def]
    log = startup_error(*site_rsa.args(), "--policy", "ELBSecurityPolicy-TLS13-1-2-2021-6")
    assert "unknown security policy 'ELBSecurityPolicy-TLS13-1-2-2021-6' " \
           "(did you mean ELBSecurityPolicy-TLS13-1-2-2021-06?)" in log

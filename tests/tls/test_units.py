"""Sans-I/O tests of the TLS layer: policies, key files, certificate rules, and TLSConnection
driven in memory by the standard library's TLS client (an independent implementation)."""

from __future__ import annotations

import base64
import os
import ssl
import time
from pathlib import Path

import pytest

from albatross.errors import ConfigError
from albatross.tls import (
    ApplicationData,
    CertificateSpec,
    CloseNotifyReceived,
    HandshakeCompleted,
    PlaintextHTTPError,
    ServerContext,
    TicketKeyRing,
    TLSConnection,
    TLSError,
    TLSSettings,
)
from albatross.tls.certs import name_matches
from albatross.tls.policies import POLICIES, PRIORITY, get_policy
from albatross.tls.ticketkeys import format_key_file, parse_key_file, read_key_file, rotate_key_file

# -- policies ---------------------------------------------------------------------------------------


def test_default_policy_is_tls12_and_13_with_albs_order() -> None:
    p = get_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert p.versions == ("TLSv1.2", "TLSv1.3")
    assert p.ciphers[:4] == ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                             "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256")
    assert "AES128-SHA" not in p.ciphers
    assert p.cipher_string.endswith("@SECLEVEL=2")


def test_every_policy_lists_ciphers_in_albs_priority_order() -> None:
    for policy in POLICIES.values():
        positions = [PRIORITY.index(c) for c in policy.ciphers]
        assert positions == sorted(positions), policy.name


def test_legacy_policies_run_at_security_level_zero() -> None:
    assert get_policy("ELBSecurityPolicy-2016-08").cipher_string.endswith("AES256-SHA:@SECLEVEL=0")
    assert get_policy("ELBSecurityPolicy-2016-08").versions == ("TLSv1", "TLSv1.1", "TLSv1.2")
    assert get_policy("ELBSecurityPolicy-TLS13-1-3-2021-06").ciphers == ()


def test_unknown_policy_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean ELBSecurityPolicy-2016-08"):
        get_policy("ELBSecurityPolicy-2016-8")


# -- ticket key files ------------------------------------------------------------------------------


def test_key_file_round_trip_and_errors(tmp_path: Path) -> None:
    keys = [os.urandom(80), os.urandom(80)]
    assert parse_key_file("# comment\n\n" + format_key_file(keys), "f") == keys
    with pytest.raises(ConfigError, match=r"^f: line 2: not valid base64$"):
        parse_key_file(format_key_file(keys[:1]) + "!!!\n", "f")
    short = base64.b64encode(b"x" * 79).decode()
    with pytest.raises(ConfigError, match="line 1: a key must be 80 bytes, this one is 79"):
        parse_key_file(short + "\n", "f")
    with pytest.raises(ConfigError, match="no session ticket keys"):
        parse_key_file("\n", "f")
    with pytest.raises(ConfigError, match="two keys share a key name"):
        parse_key_file(format_key_file([keys[0], keys[0][:16] + os.urandom(64)]), "f")


def test_rotate_prepends_and_keeps_three(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    seen = []
    for _ in range(4):
        seen.insert(0, rotate_key_file(str(path))[0])
    assert read_key_file(str(path)) == seen[:3]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ticket-keys.")]


def test_in_memory_ring_rotates_on_schedule() -> None:
    ring = TicketKeyRing(None, rotation_seconds=100, now=1000.0)
    first = ring.keys
    assert len(first) == 1
    assert not ring.refresh(1050.0)
    assert ring.refresh(1100.0)
    assert ring.keys[1:] == first and len(ring.keys) == 2
    for t in (1200.0, 1300.0, 1400.0):
        ring.refresh(t)
    assert len(ring.keys) == 3


def test_file_ring_keeps_old_keys_when_the_new_file_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    rotate_key_file(str(path))
    ring = TicketKeyRing(str(path))
    before = ring.keys
    path.write_text("garbage\n")
    assert not ring.refresh(time.time())
    assert ring.keys == before
    rotate_key_file(str(tmp_path / "fresh"))
    os.replace(tmp_path / "fresh", path)
    assert ring.refresh(time.time())
    assert ring.keys != before


# -- certificate names ---------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "host", "ok"), [
    ("a.test", "a.test", True),
    ("*.w.test", "x.w.test", True),
    ("*.w.test", "w.test", False),
    ("*.w.test", "x.y.w.test", False),
    ("*.w.test", ".w.test", False),
    ("a.test", "b.test", False),
])
def test_name_matching(pattern: str, host: str, ok: bool) -> None:
    assert name_matches(pattern, host) is ok


# -- TLSConnection in memory ----------------------------------------------------------------------


class MemoryClient:
    """The standard library's TLS client over memory BIOs."""

    def __init__(self, ctx: ssl.SSLContext, server_name: str | None = "a.test") -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)


def client_context(alpn: list[str] | None = None, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store: loading one costs 50 ms
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def handshake(server: TLSConnection, client: MemoryClient) -> list:  # type: ignore[type-arg]
    events = []
    for _ in range(10):
        try:
            client.tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        events += server.receive_data(client.outgoing.read())
        client.incoming.write(server.data_to_send())
        if done and server.handshake_done:
            return events
    raise AssertionError("handshake did not complete")


@pytest.fixture(scope="module")
def context(site_rsa, site_ecdsa, other_rsa) -> ServerContext:  # type: ignore[no-untyped-def]
    specs = tuple(CertificateSpec(str(c.cert), str(c.key)) for c in (site_rsa, site_ecdsa, other_rsa))
    return ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))


def test_alpn_server_preference_and_application_data(context: ServerContext) -> None:
    server = TLSConnection(context)
    client = MemoryClient(client_context(["http/1.1", "h2"]))
    events = handshake(server, client)
    completed = [e for e in events if isinstance(e, HandshakeCompleted)]
    assert completed[0].info.alpn == "h2" and completed[0].info.version == "TLSv1.3"
    assert completed[0].info.server_name == "a.test"
    client.tls.write(b"ping")
    events = server.receive_data(client.outgoing.read())
    assert events == [ApplicationData(b"ping")]
    server.send(b"pong")
    client.incoming.write(server.data_to_send())
    assert client.tls.read() == b"pong"


def test_ecdsa_for_ecdsa_clients_rsa_otherwise(context: ServerContext) -> None:
    def key_type(ciphers: str) -> str:
        ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(ciphers)
        client = MemoryClient(ctx)
        server = TLSConnection(context)
        handshake(server, client)
        return server.info.cipher if server.info else ""

    assert key_type("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256").startswith("ECDHE-ECDSA")
    assert key_type("ECDHE-RSA-AES128-GCM-SHA256").startswith("ECDHE-RSA")


def test_close_notify_is_an_event_and_answered(context: ServerContext) -> None:
    server = TLSConnection(context)
    client = MemoryClient(client_context())
    handshake(server, client)
    try:
        client.tls.unwrap()
    except ssl.SSLWantReadError:
        pass
    events = server.receive_data(client.outgoing.read())
    assert isinstance(events[-1], CloseNotifyReceived)
    server.start_shutdown()
    client.incoming.write(server.data_to_send())
    client.tls.unwrap()  # completes: the server's close_notify arrived


def test_plaintext_http_is_recognised(context: ServerContext) -> None:
    server = TLSConnection(context)
    with pytest.raises(PlaintextHTTPError):
        server.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")


def test_garbage_fails_with_an_alert_and_a_clean_error_queue(context: ServerContext) -> None:
    server = TLSConnection(context)
    with pytest.raises(TLSError) as info:
        server.receive_data(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")
    assert info.value.during_handshake
    assert server.data_to_send()[:1] == b"\x15"  # an alert record
    # The shared error queue was drained: the next connection is unaffected.
    good = TLSConnection(context)
    handshake(good, MemoryClient(client_context()))
    assert good.handshake_done

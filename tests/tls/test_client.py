"""The client side of the binding (albatross.tls.client), driven in memory against Albatross's
own server connection: no sockets, both ends sans-I/O. (The probe's integration tests run the
same client against nginx, an independent server.)"""

from __future__ import annotations

import time

import pytest
from cryptography.x509 import ocsp

from albatross.tls import CertificateSpec, ServerContext, TicketKeyRing, TLSConnection, TLSError, TLSSettings
from albatross.tls.client import ClientContext, ClientSettings, TLSClientConnection
from albatross.tls.connection import ApplicationData

TLS12 = ClientSettings(max_version="TLSv1.2")


def pump(client: TLSClientConnection, server: TLSConnection) -> list:  # type: ignore[type-arg]
    """Move bytes both ways until neither side has anything to say; the client's events."""
    events = []
    while True:
        to_server = client.data_to_send()
        if to_server:
            server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            events += client.receive_data(to_client)
        if not to_server and not to_client:
            return events


def connect(server_ctx: ServerContext, settings: ClientSettings = ClientSettings(),
            **kwargs) -> tuple[TLSClientConnection, TLSConnection]:  # type: ignore[no-untyped-def]
    client = TLSClientConnection(ClientContext(settings), server_name="a.test", **kwargs)
    server = TLSConnection(server_ctx)
    client.start()
    pump(client, server)
    assert client.handshake_done
    return client, server


@pytest.fixture(scope="module")
def server_ctx(site_rsa, site_ecdsa) -> ServerContext:  # type: ignore[no-untyped-def]
    specs = (CertificateSpec(str(site_ecdsa.cert), str(site_ecdsa.key)), CertificateSpec(str(site_rsa.cert), str(site_rsa.key)))
    return ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))


def test_alpn_version_cipher_and_certificate(server_ctx: ServerContext) -> None:
    client, _ = connect(server_ctx, alpn=("http/1.1", "h2"))
    assert client.info is not None
    assert (client.info.alpn, client.info.version, client.info.server_name) == ("h2", "TLSv1.3", "a.test")
    assert client.cipher.aead and client.cipher.group == "X25519" and client.cipher.key_exchange == "KxANY"
    assert client.peer_certificate()[:1] == b"\x30"  # DER SEQUENCE


def test_npn_records_the_servers_list_and_the_client_chooses(server_ctx: ServerContext) -> None:
    settings = ClientSettings(max_version="TLSv1.2", npn=("http/1.1", "h2"))
    client, server = connect(server_ctx, settings)
    assert client.npn_advertised == ("h2", "http/1.1")
    # In NPN the client chooses: its own first choice wins here, unlike ALPN.
    assert client.info.npn == "http/1.1" and server.info.npn == "http/1.1"  # type: ignore[union-attr]


def test_npn_without_overlap_asks_for_the_clients_first(server_ctx: ServerContext) -> None:
    client, _ = connect(server_ctx, ClientSettings(max_version="TLSv1.2", npn=("spdy/3",)))
    assert client.npn_advertised == ("h2", "http/1.1")
    assert client.info.npn == "spdy/3"  # type: ignore[union-attr]


def test_no_npn_extension_when_not_offered(server_ctx: ServerContext) -> None:
    client, _ = connect(server_ctx, TLS12)
    assert client.npn_advertised is None and client.info.npn is None  # type: ignore[union-attr]


def test_tls12_ticket_hint_and_resumption(server_ctx: ServerContext) -> None:
    client, _ = connect(server_ctx, TLS12)
    session = client.session()
    assert session is not None and session.has_ticket and session.version == "TLSv1.2"
    assert session.ticket_lifetime_hint == 43200
    again, _ = connect(server_ctx, TLS12, session=session)
    assert again.info.resumed  # type: ignore[union-attr]


def test_session_id_resumption_with_tickets_off(server_ctx: ServerContext) -> None:
    settings = ClientSettings(max_version="TLSv1.2", tickets=False)
    client, _ = connect(server_ctx, settings)
    session = client.session()
    assert session is not None and not session.has_ticket and len(session.session_id) == 32
    again, _ = connect(server_ctx, settings, session=session)
    assert again.info.resumed  # type: ignore[union-attr]


def test_tls13_session_is_resumable_once_the_tickets_are_read(server_ctx: ServerContext) -> None:
    settings = ClientSettings(min_version="TLSv1.3")
    client, server = connect(server_ctx, settings)
    server.send(b"hello")  # tickets were queued behind the handshake; this data follows them
    events = client.receive_data(server.data_to_send())
    assert ApplicationData(b"hello") in events
    session = client.session()
    assert session is not None and session.resumable and session.ticket_lifetime_hint == 43200
    again, _ = connect(server_ctx, settings, session=session)
    assert again.info.resumed  # type: ignore[union-attr]


def test_renegotiation_refused_with_the_alerts_recorded(server_ctx: ServerContext) -> None:
    client, server = connect(server_ctx, TLS12)
    assert client.secure_renegotiation
    client.renegotiate()
    assert client.renegotiation_pending
    with pytest.raises(TLSError, match="no renegotiation"):
        pump(client, server)
    assert [(a.sent, a.level, a.name) for a in client.alerts] == [
        (False, "warning", "no_renegotiation"), (True, "fatal", "handshake_failure")]


def test_refused_version_reports_the_servers_alert(server_ctx: ServerContext) -> None:
    client = TLSClientConnection(ClientContext(ClientSettings("TLSv1", "TLSv1")), server_name="a.test")
    server = TLSConnection(server_ctx)
    client.start()
    with pytest.raises(TLSError, match="unsupported protocol"):
        server.receive_data(client.data_to_send())
    with pytest.raises(TLSError, match="tlsv1 alert protocol version"):
        client.receive_data(server.data_to_send())
    assert [str(a) for a in client.alerts] == ["fatal protocol_version alert received"]


def test_ocsp_staple_is_read_back(pki, site_rsa) -> None:  # type: ignore[no-untyped-def]
    staple = pki.ocsp_response(site_rsa)
    ctx = ServerContext(TLSSettings(certificates=(CertificateSpec(str(site_rsa.cert), str(site_rsa.key), str(staple)),)),
                        TicketKeyRing(None, now=time.time()))
    without, _ = connect(ctx)
    assert without.ocsp_response is None
    client, _ = connect(ctx, request_ocsp=True)
    der = client.ocsp_response
    assert der == staple.read_bytes()
    assert ocsp.load_der_ocsp_response(der).certificate_status == ocsp.OCSPCertStatus.GOOD

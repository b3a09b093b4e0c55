"""The binding frees what it allocates: SSL objects, BIOs, OCSP staples, contexts."""

from __future__ import annotations

import gc
import time

from albatross.tls import CertificateSpec, ServerContext, TicketKeyRing, TLSConnection, TLSSettings
from tests.helpers import c_heap_in_use
from tests.tls.test_units import MemoryClient, client_context, handshake


def _exchange(context: ServerContext, count: int) -> None:
    client_ctx = client_context(["h2", "http/1.1"])
    for i in range(count):
        server = TLSConnection(context)
        client = MemoryClient(client_ctx, server_name="a.test" if i % 2 else None)
        handshake(server, client)
        client.tls.write(b"x" * 1000)
        server.receive_data(client.outgoing.read())
        server.send(b"y" * 20000)
        client.incoming.write(server.data_to_send())
        server.start_shutdown()
        server.data_to_send()


def test_handshakes_do_not_leak(pki, site_rsa, site_ecdsa) -> None:  # type: ignore[no-untyped-def]
    staple = pki.ocsp_response(site_rsa)
    specs = (CertificateSpec(str(site_ecdsa.cert), str(site_ecdsa.key)),
             CertificateSpec(str(site_rsa.cert), str(site_rsa.key), str(staple)))
    context = ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))
    _exchange(context, 300)  # warm up caches and allocator pools
    gc.collect()
    before = c_heap_in_use()
    _exchange(context, 2000)
    gc.collect()
    grown = c_heap_in_use() - before
    # One leaked SSL object alone is several KiB: 2,000 of them would be megabytes.
    assert grown < 1_500_000, f"C heap grew by {grown} bytes over 2000 connections"


def test_contexts_are_freed(site_rsa, site_ecdsa) -> None:  # type: ignore[no-untyped-def]
    specs = (CertificateSpec(str(site_ecdsa.cert), str(site_ecdsa.key)),
             CertificateSpec(str(site_rsa.cert), str(site_rsa.key)))

    def build() -> None:
        ctx = ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))
        ctx.select(b"a.test")

    for _ in range(5):
        build()
    gc.collect()
    before = c_heap_in_use()
    for _ in range(50):
        build()
    gc.collect()
    grown = c_heap_in_use() - before
    # Each listener context holds several SSL_CTX objects of tens of KiB each.
    assert grown < 500_000, f"C heap grew by {grown} bytes over 50 listener contexts"


def test_client_connections_and_sessions_do_not_leak(site_rsa, site_ecdsa) -> None:  # type: ignore[no-untyped-def]
    from albatross.tls.client import ClientContext, ClientSettings, TLSClientConnection
    from tests.tls.test_client import pump

    specs = (CertificateSpec(str(site_ecdsa.cert), str(site_ecdsa.key)),
             CertificateSpec(str(site_rsa.cert), str(site_rsa.key)))
    server_ctx = ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))
    npn = ClientContext(ClientSettings(max_version="TLSv1.2", npn=("h2", "http/1.1")))

    def run(count: int) -> None:
        session = None
        for i in range(count):
            client = TLSClientConnection(npn, server_name="a.test", alpn=("h2",) if i % 2 else (),
                                         session=session, request_ocsp=True)
            server = TLSConnection(server_ctx)
            client.start()
            pump(client, server)
            client.peer_certificate()
            session = client.session() if i % 3 else None
            if i % 5 == 0:
                client.free()

    run(300)
    gc.collect()
    before = c_heap_in_use()
    run(2000)
    gc.collect()
    grown = c_heap_in_use() - before
    assert grown < 1_500_000, f"C heap grew by {grown} bytes over 2000 client connections"

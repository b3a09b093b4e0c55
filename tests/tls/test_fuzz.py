"""Property tests: whatever bytes arrive, the TLS and HTTP/1.1 cores fail cleanly and alone."""

from __future__ import annotations

import re
import ssl
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from albatross.http.exchange import static
from albatross.http.messages import Response
from albatross.http1.connection import H1ServerConnection
from albatross.tls import CertificateSpec, ServerContext, TicketKeyRing, TLSConnection, TLSError, TLSSettings
from tests.helpers import FakeOwner
from tests.tls.test_units import MemoryClient, client_context, handshake

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def context(site_rsa, site_ecdsa) -> ServerContext:  # type: ignore[no-untyped-def]
    specs = tuple(CertificateSpec(str(c.cert), str(c.key)) for c in (site_ecdsa, site_rsa))
    return ServerContext(TLSSettings(certificates=specs), TicketKeyRing(None, now=time.time()))


@pytest.fixture(scope="module")
def client_hello() -> bytes:
    client = MemoryClient(client_context(["h2", "http/1.1"]))
    with pytest.raises(ssl.SSLWantReadError):
        client.tls.do_handshake()
    return client.outgoing.read()


def feed(context: ServerContext, chunks: list[bytes]) -> None:
    conn = TLSConnection(context)
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            conn.data_to_send()
    except TLSError:
        conn.data_to_send()  # the alert, if any, is still collectable
    assert not conn.handshake_done


@FUZZ
@given(chunks=st.lists(st.binary(max_size=600), max_size=4))
def test_random_bytes_fail_cleanly(context: ServerContext, chunks: list[bytes]) -> None:
    feed(context, chunks)


@FUZZ
@given(data=st.data())
def test_mutated_client_hello_fails_cleanly_and_alone(context: ServerContext, client_hello: bytes,
                                                      data: st.DataObject) -> None:
    mutated = bytearray(client_hello)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(mutated)))
    feed(context, [bytes(mutated[:cut]), bytes(mutated[cut:])])
    # The shared OpenSSL error queue was left clean: a real client still gets through.
    good = TLSConnection(context)
    handshake(good, MemoryClient(client_context()))
    assert good.handshake_done


_app = static(lambda request: Response(200, [], b"ok"))


@FUZZ
@given(chunks=st.lists(st.binary(max_size=300), max_size=4),
       prefix=st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"]))
def test_http1_garbage_gets_a_response_or_nothing(chunks: list[bytes], prefix: bytes) -> None:
    owner = FakeOwner()
    conn = H1ServerConnection(_app, owner)
    for chunk in [prefix, *chunks]:
        conn.receive_data(chunk)
    out = b"".join(owner.sent)
    assert out == b"" or out.startswith(b"HTTP/1.1 ")
    if owner.closed and out:
        # The last response head (a body may mention "HTTP/1.1 " itself: heads have a status code).
        heads = re.findall(rb"HTTP/1\.1 \d{3} [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n", out)
        assert heads and b"Connection: close\r\n" in heads[-1]

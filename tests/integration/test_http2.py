"""HTTP/2 on the TLS listener, driven by independent clients (httpx + h2, nghttp, h2load)."""

from __future__ import annotations

import asyncio
import re
import ssl

import httpx
import pytest

from tests.helpers import Albatross, run


@pytest.fixture(scope="module")
def server(site_rsa, site_ecdsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_ecdsa.args(), *site_rsa.args()) as proc:
        yield proc


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_many_concurrent_requests_share_one_connection(server: Albatross) -> None:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(http2=True, verify=client_tls(),
                                     limits=httpx.Limits(max_connections=1)) as client:
            return await asyncio.gather(*(client.get(f"https://{server.address}/n/{i}") for i in range(200)))

    responses = asyncio.run(main())
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert {r.status_code for r in responses} == {200}
    for i, r in enumerate(responses):
        assert f'<td id="path">/n/{i}</td>' in r.text
    peers = {re.search(r'id="client">([^<]+)<', r.text).group(1) for r in responses}  # type: ignore[union-attr]
    assert len(peers) == 1  # one connection, multiplexed


def test_post_body_larger_than_the_windows_is_consumed(server: Albatross) -> None:
    body = b"x" * (3 * 1024 * 1024)  # larger than the stream and connection windows
    with httpx.Client(http2=True, verify=client_tls()) as client:
        r = client.post(f"https://{server.address}/upload", content=body)
        again = client.get(f"https://{server.address}/healthz")
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert '<td id="method">POST</td>' in r.text
    assert again.text == "ok\n"


def test_head_over_http2_has_length_and_no_body(server: Albatross) -> None:
    with httpx.Client(http2=True, verify=client_tls()) as client:
        r = client.head(f"https://{server.address}/healthz")
    assert r.status_code == 200 and r.headers["content-length"] == "3" and r.content == b""
    assert r.headers["server"] == "albatross"


def test_h2load_completes_every_request(server: Albatross) -> None:
    out = run(["h2load", "-n", "2000", "-c", "4", "-m", "10", f"https://{server.address}/healthz"], timeout=120).stdout
    assert re.search(r"requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored", out), out
    assert "status codes: 2000 2xx" in out

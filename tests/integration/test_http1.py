"""HTTP/1.1 on the demo listeners: keep-alive, pipelining, HEAD, limits, Connection: close."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.helpers import Albatross, connect, read_until_closed


@pytest.fixture(scope="module")
def server(site_rsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--http-port", "0") as proc:
        yield proc


def tls_socket(port: int) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(connect(port), server_hostname="a.test")


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` Content-Length-framed responses."""
    data = b""
    responses = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed early after {responses!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        is_head = b"X-Head: yes" in head
        need = 0 if is_head else length
        while len(rest) < need:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        responses.append(head + b"\r\n\r\n" + rest[:need])
        data = rest[need:]
    return responses


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_pipelined_requests_are_answered_in_order(server: Albatross, scheme: str) -> None:
    sock = tls_socket(server.port) if scheme == "https" else connect(server.ports["http"])
    with sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n"
                     b"GET /third HTTP/1.1\r\nHost: a.test\r\n\r\n")
        first, second, third = read_responses(sock, 3)
    assert b'<td id="path">/first</td>' in first
    assert second.endswith(b"\r\n\r\nok\n")
    assert b'<td id="path">/third</td>' in third
    assert all(r.startswith(b"HTTP/1.1 200 OK\r\n") for r in (first, second, third))
    assert b"Connection: keep-alive" in third


def test_head_keeps_content_length_and_sends_no_body(server: Albatross) -> None:
    with tls_socket(server.port) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: a.test\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 2 or not data.endswith(b"ok\n"):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    head, _, get = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 3" in head
    assert get.startswith(b"HTTP/1.1 200 OK")  # nothing between the HEAD response and the next one


def test_connection_close_is_honoured(server: Albatross) -> None:
    with tls_socket(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 1
    assert b"Connection: close" in data


def test_http10_closes_after_the_response(server: Albatross) -> None:
    with connect(server.ports["http"]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok\n")


def test_request_line_over_16k_gets_414(server: Albatross) -> None:
    with tls_socket(server.port) as sock:
        sock.sendall(b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 414 Request-URI Too Long\r\n") or data.startswith(b"HTTP/1.1 414 ")
    assert b"Server: albatross" in data


def test_header_over_16k_gets_400(server: Albatross) -> None:
    with tls_socket(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_all_headers_over_64k_get_400(server: Albatross) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(9))
    with tls_socket(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n" + headers + b"\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_malformed_request_gets_400_and_the_connection_closes(server: Albatross) -> None:
    with connect(server.ports["http"]) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nBad Header Line\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in data


def test_http2_preface_on_http1_gets_505(server: Albatross) -> None:
    with connect(server.ports["http"]) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 505 ")


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--idle-timeout", "1") as proc:
        with tls_socket(proc.port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
            first = read_responses(sock, 1)[0]
            assert first.startswith(b"HTTP/1.1 200 OK") and b"Connection: keep-alive" in first
            sock.settimeout(15)
            # Nothing more is sent; the server closes with close_notify after the idle timeout.
            assert sock.recv(1) == b""

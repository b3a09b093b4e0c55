"""The built-in page: what the demo serves, and what tests and browsers read back.

It reports what the client negotiated (HTTP version, TLS version, cipher, ALPN/NPN, SNI,
resumption), which is the whole point of the TLS front end. A ``GET /healthz`` answers
``ok`` for readiness checks. Response headers mirror an ordinary origin server's (ETag,
Last-Modified, Content-Type), like the target in the seed's field report.
"""

from __future__ import annotations

import hashlib
import html
import time
from email.utils import formatdate

from albatross.http.messages import SERVER, Request, Response

_STARTED = formatdate(time.time(), usegmt=True).encode()


def _row(name: str, value: object) -> str:
    return f"<tr><th>{html.escape(name)}</th><td id=\"{html.escape(name.lower().replace(' ', '-'))}\">" \
           f"{html.escape('-' if value is None else str(value))}</td></tr>"


def page(request: Request) -> Response:
    """The built-in application: connection details as a small HTML page."""
    if request.target == b"/healthz":
        return Response(200, [(b"Server", SERVER), (b"Content-Type", b"text/plain")], b"ok\n")
    conn = request.connection
    tls = getattr(conn, "tls", None)
    rows = [
        _row("HTTP version", request.http_version),
        _row("Method", request.method.decode("latin-1")),
        _row("Path", request.target.decode("latin-1")),
        _row("Host", (request.authority or b"").decode("latin-1")),
        _row("Client", getattr(conn, "peer", None)),
        _row("TLS version", tls and tls.version),
        _row("Cipher", tls and tls.cipher),
        _row("ALPN", tls and tls.alpn),
        _row("NPN", tls and tls.npn),
        _row("SNI", tls and tls.server_name),
        _row("Resumed", tls and tls.resumed),
    ]
    body = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Albatross</title></head>\n"
        "<body><h1>Albatross</h1>\n<p>A load balancer in ALB's own terms.</p>\n<table>\n"
        + "\n".join(rows)
        + "\n</table></body></html>\n"
    ).encode()
    etag = b'"' + hashlib.blake2s(body, digest_size=8).hexdigest().encode() + b'"'
    return Response(
        200,
        [(b"Server", SERVER), (b"Content-Type", b"text/html; charset=UTF-8"), (b"Last-Modified", _STARTED), (b"ETag", etag),
         (b"Cache-Control", b"no-store")],
        body,
    )

"""Built-in demo targets: small HTTP/1.1 origin servers that say who answered.

``albatross demo`` starts two of them on loopback and puts the balancer in front, so a
fresh machine shows a request going through to a target. Each answers:

* ``/healthz``: ``ok``;
* ``/echo``: JSON with the target's name, the request line, the headers it received and the
  length and SHA-256 of the body (tests use it to check what arrived);
* anything else: a small HTML page naming the target and listing the request headers.

They speak keep-alive HTTP/1.1 with Content-Length or chunked request bodies (httptools).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json

import httptools


class _TargetProtocol(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.digest = hashlib.sha256()
        self.length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.digest = hashlib.sha256()
        self.length = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.digest.update(body)
        self.length += len(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if path == b"/healthz":
            body, ctype = b"ok\n", b"text/plain"
        elif path.startswith(b"/echo"):
            body = json.dumps({
                "target": self.name,
                "method": method.decode("latin-1"),
                "target_uri": self.url.decode("latin-1"),
                "http_version": self.parser.get_http_version(),
                "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in self.headers],
                "body_length": self.length,
                "body_sha256": self.digest.hexdigest(),
            }).encode()
            ctype = b"application/json"
        else:
            body, ctype = self._page(method), b"text/html; charset=UTF-8"
        keep_alive = self.parser.should_keep_alive()
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: %d\r\n" % len(body)
                + b"X-Albatross-Target: " + self.name.encode() + b"\r\n"
                + (b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n"))
        assert self.transport is not None
        self.transport.write(head if method == b"HEAD" else head + body)
        if not keep_alive:
            self.transport.close()

    def _page(self, method: bytes) -> bytes:
        rows = "\n".join(
            f"<tr><th>{html.escape(n.decode('latin-1'))}</th><td>{html.escape(v.decode('latin-1'))}</td></tr>"
            for n, v in self.headers
        )
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Albatross demo target</title></head>\n"
            f"<body><h1>Served by <span id=\"target\">{html.escape(self.name)}</span></h1>\n"
            f"<p>{html.escape(method.decode('latin-1'))} {html.escape(self.url.decode('latin-1'))}</p>\n"
            f"<h2>Request headers as the target received them</h2>\n<table>\n{rows}\n</table></body></html>\n"
        ).encode()


async def start_target(name: str, host: str = "127.0.0.1", port: int = 0) -> asyncio.base_events.Server:
    """Start one demo target; ``server.sockets[0].getsockname()`` tells its port."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _TargetProtocol(name), host, port, backlog=1024)

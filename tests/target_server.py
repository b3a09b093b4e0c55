"""A test target, independent of Albatross's own HTTP code (h11 on asyncio streams).

Run as ``python -m tests.target_server NAME`` (port 0); it prints ``target NAME listening PORT``
and, per connection, ``target NAME closed PEERPORT`` when a client connection ends, so tests
can watch what happened on the target side. Paths:

* ``/echo``: JSON of what arrived (method, target, headers, body length and SHA-256);
* ``/bytes/N``: N bytes of a deterministic pattern (SHA-256 in ``X-Body-SHA256``);
* ``/chunked/N``: the same, sent chunked;
* ``/hang``: reads the request, never answers;
* ``/slow/MS``: answers after MS milliseconds;
* ``/close-early``: closes without a response;
* ``/close-mid``: sends a head with Content-Length 1000, 10 bytes, then closes;
* ``/garbage``: answers with bytes that are not HTTP;
* ``/bigheader``: a response whose header block is over 32 KiB;
* ``/trailers``: a chunked body followed by an ``X-Digest`` trailer field;
* ``/set-cookie/NAME=VALUE``: ``/echo``'s answer with ``Set-Cookie: NAME=VALUE; Path=/; HttpOnly``;
* ``/healthz``: 200, or 503 after ``/set-health/fail`` (``/set-health/ok`` restores it);
* ``/ws``: accepts a WebSocket upgrade, then echoes raw bytes, the first
  of them prefixed with ``NAME:``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys

import h11


def pattern(n: int) -> bytes:
    block = bytes(range(256)) * 256  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


class Target:
    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[1]
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=128 * 1024)
        try:
            while await self._one(conn, reader, writer):
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            print(f"target {self.name} closed {peer}", flush=True)

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(262144)
                conn.receive_data(data)
                continue
            return event

    async def _one(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request = await self._next(conn, reader)
        if not isinstance(request, h11.Request):
            return False
        digest, length = hashlib.sha256(), 0
        if conn.client_is_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[("X-Target", self.name)])))
        while True:
            event = await self._next(conn, reader)
            if isinstance(event, h11.Data):
                digest.update(event.data)
                length += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return False
        path = request.target.decode()
        agent = dict(request.headers).get(b"user-agent", b"-").decode("latin-1")
        print(f"target {self.name} request {path} {agent}", flush=True)
        if path.startswith("/set-health/"):  # test control: make /healthz pass or fail
            self.healthy = path.endswith("/ok")
        if path == "/healthz" and not self.healthy:
            writer.write(conn.send(h11.Response(status_code=503, headers=[("Content-Length", "0")])))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return False
        if path == "/ws":
            await self._websocket_echo(conn, request, reader, writer)
            return False
        if path == "/hang" or path.startswith("/slow/"):
            delay = 3600.0 if path == "/hang" else int(path.split("/")[2]) / 1000
            try:  # wait, but notice at once when the balancer gives up on us (EOF)
                if await asyncio.wait_for(reader.read(1), delay) == b"":
                    return False
            except TimeoutError:
                pass
        if path == "/close-early":
            return False
        if path == "/garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            return False
        if path == "/bigheader":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n")
            await writer.drain()
            return False
        if path == "/close-mid":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
            await writer.drain()
            return False
        headers = [("X-Target", self.name)]
        if path.startswith("/set-cookie/"):  # the application sets a cookie (app_cookie stickiness)
            headers.append(("Set-Cookie", path.split("/", 2)[2] + "; Path=/; HttpOnly"))
        if path == "/trailers":  # a chunked body followed by a trailer field
            writer.write(conn.send(h11.Response(status_code=200, headers=headers + [("Trailer", "X-Digest")])))
            writer.write(conn.send(h11.Data(data=b"body with a trailer")))
            writer.write(conn.send(h11.EndOfMessage(headers=[("X-Digest", "sha256-of-nothing")])))
            await writer.drain()
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE
        chunked = False
        if path.startswith("/bytes/") or path.startswith("/chunked/"):
            body = pattern(int(path.split("/")[2]))
            headers.append(("X-Body-SHA256", hashlib.sha256(body).hexdigest()))
            chunked = path.startswith("/chunked/")
        else:
            body = json.dumps({
                "target": self.name, "method": request.method.decode(), "target_uri": path,
                "headers": [[n.decode(), v.decode()] for n, v in request.headers.raw_items()],
                "body_length": length, "body_sha256": digest.hexdigest(),
            }).encode()
            headers.append(("Content-Type", "application/json"))
        if not chunked:
            headers.append(("Content-Length", str(len(body))))
        writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
        if request.method != b"HEAD":
            step = 65536 if chunked else len(body) or 1
            for i in range(0, len(body), step):
                writer.write(conn.send(h11.Data(data=body[i:i + step])))
                await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE


    async def _websocket_echo(self, conn: h11.Connection, request: h11.Request, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        """Accept the upgrade, then echo raw bytes (first prefixed with the target's name) until EOF."""
        key = dict(request.headers).get(b"sec-websocket-key", b"")
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(conn.send(h11.InformationalResponse(status_code=101, headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)])))
        data, _ = conn.trailing_data
        prefix = self.name.encode() + b":"  # once per connection: says which target holds the tunnel
        while True:
            if data:
                writer.write(prefix + data)
                prefix = b""
                await writer.drain()
            data = await reader.read(65536)
            if not data:
                return


async def main(name: str) -> None:
    # A deep accept queue: tests open 128 connections at once, past asyncio's default backlog of
    # 100, and a dropped handshake ACK can stall a connection for a minute (SYN-ACK retries).
    server = await asyncio.start_server(Target(name).handle, "127.0.0.1", 0, limit=262144, backlog=1024)
    print(f"target {name} listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "t"))

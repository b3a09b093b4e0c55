"""Micro-benchmark: µs per request head built for a target, and per response read from one.

Method: a browser-like GET with 10 fields goes through
``check_request_framing`` and ``build_target_request`` (XFF append, trace id drawn from the
pool); a small nginx-like response (6 fields, 47-byte body) arriving in one read goes through
``ResponseReader.expect`` + ``receive_data`` (and, separately, ``serialize_response_head``).
Each figure is the best of ``--repeat`` runs of ``--rounds`` iterations; outputs are checked
once before timing. No sockets.

Run: ``.venv/bin/python bench/forwarding_core.py [--rounds 200000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from albatross.http.forwarding import (
    ClientSide,
    ForwardingPolicy,
    TraceIds,
    build_target_request,
    check_request_framing,
)
from albatross.http1.upstream import ResponseEnded, ResponseReader, serialize_response_head

HEADERS = [
    (b"host", b"shop.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"connection", b"keep-alive"),
    (b"upgrade-insecure-requests", b"1"),
    (b"sec-fetch-dest", b"document"),
    (b"referer", b"https://shop.example.com/"),
    (b"cookie", b"session=0123456789abcdef; theme=dark"),
]
BODY = b"Hello from the HTTP/2 protocol layer benchmark!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 47\r\nConnection: keep-alive\r\n"
            b"ETag: \"65920080-2f\"\r\n\r\n" + BODY)
CLIENT = ClientSide("203.0.113.7", 51234, 443, "https")
POLICY = ForwardingPolicy()
NOW = 1_700_000_000.0


def build_once(ids: TraceIds) -> bytes:
    framing = check_request_framing(b"GET", HEADERS, "1.1")
    return build_target_request(b"GET", b"/products?page=2", "1.1", HEADERS, framing, CLIENT, POLICY,
                                trace_id=ids(NOW), now=NOW)


def timed(label: str, rounds: int, repeat: int, loop: Callable[[int], None]) -> float:
    best = min(_one(rounds, loop) for _ in range(repeat))
    print(f"{label:<52} {best * 1e6 / rounds:6.2f} µs")
    return best


def _one(rounds: int, loop: Callable[[int], None]) -> float:
    start = time.perf_counter()
    loop(rounds)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ids = TraceIds()

    head = build_once(ids)
    assert head.startswith(b"GET /products?page=2 HTTP/1.1\r\nHost: shop.example.com\r\n"), head
    assert b"X-Forwarded-For: 203.0.113.7\r\n" in head and b"connection" not in head.lower()
    reader = ResponseReader()
    reader.expect(b"GET")
    events = reader.receive_data(RESPONSE)
    assert events[1].data == BODY and isinstance(events[-1], ResponseEnded) and reader.reusable
    started = events[0]

    def build_loop(n: int) -> None:
        for _ in range(n):
            build_once(ids)

    def framing_loop(n: int) -> None:
        for _ in range(n):
            check_request_framing(b"GET", HEADERS, "1.1")

    def reader_loop(n: int) -> None:
        r = ResponseReader()
        for _ in range(n):
            r.expect(b"GET")
            r.receive_data(RESPONSE)

    def serialize_loop(n: int) -> None:
        for _ in range(n):
            serialize_response_head(started, client_http_version="1.1", keep_alive=True, framing_to_client="length")

    print(f"rounds={args.rounds} repeat={args.repeat} (best run)")
    timed("check_request_framing (10 fields)", args.rounds, args.repeat, framing_loop)
    timed("check_request_framing + build_target_request", args.rounds, args.repeat, build_loop)
    timed("ResponseReader expect + receive_data (6 fields, 47 B)", args.rounds, args.repeat, reader_loop)
    timed("serialize_response_head (6 fields)", args.rounds, args.repeat, serialize_loop)


if __name__ == "__main__":
    main()

"""Micro-benchmark: µs per request of the HTTP/2 protocol layer alone, Albatross vs pure-Python h2.

Method: an h2 client drives an h2 server for ROUNDS rounds of
10 GETs each and acknowledges the DATA it receives; the client's bytes of every round are
recorded once. Each server then gets exactly the same list of batches: feed one batch, answer
every complete request (4 response headers, a 47-byte body, END_STREAM), take one ``bytes``
of output per batch. Only that loop is timed; session creation is not. Every repetition's
output is verified: a fresh client replaying the same requests must reproduce the recorded
input byte for byte and decode every response.

Run: ``.venv/bin/python bench/h2_core.py [--rounds 2000] [--repeat 5]``. Loopback only in
spirit: no sockets at all.
"""

from __future__ import annotations

import argparse
import statistics
import time

import h2.config
import h2.connection
import h2.events

from albatross.http2 import H2Connection, RequestReceived

REQUEST = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"https"),
    (b":authority", b"127.0.0.1:8443"),
    (b"user-agent", b"albatross-bench/1"),
    (b"accept", b"*/*"),
]
BODY = b"Hello from the HTTP/2 protocol layer benchmark!"
assert len(BODY) == 47
RESPONSE = [(b"content-type", b"text/plain"), (b"content-length", b"47"), (b"server", b"example")]
PER_ROUND = 10


def new_client() -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    return client


def client_round(client: h2.connection.H2Connection, round_no: int) -> bytes:
    for i in range(PER_ROUND):
        client.send_headers(1 + 2 * (round_no * PER_ROUND + i), REQUEST, end_stream=True)
    return client.data_to_send()


def client_absorb(client: h2.connection.H2Connection, output: bytes) -> tuple[int, int]:
    """Feed server output to the client; return (responses completed, bad responses)."""
    done = bad = 0
    for event in client.receive_data(output):
        if isinstance(event, h2.events.DataReceived):
            client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            bad += event.data != BODY
        elif isinstance(event, h2.events.ResponseReceived):
            bad += event.headers != [(b":status", b"200"), *RESPONSE]
        elif isinstance(event, h2.events.StreamEnded):
            done += 1
    return done, bad


class H2Server:
    """The baseline: h2's own server state machine."""

    name = "h2 4.x H2Connection"

    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()

    def run(self, batches: list[bytes]) -> list[bytes]:
        conn, outputs = self.conn, []
        status = [(b":status", b"200"), *RESPONSE]
        for batch in batches:
            for event in conn.receive_data(batch):
                if isinstance(event, h2.events.RequestReceived):
                    conn.send_headers(event.stream_id, status)
                    conn.send_data(event.stream_id, BODY, end_stream=True)
            outputs.append(conn.data_to_send())
        return outputs


class AlbatrossServer:
    """albatross.http2.H2Connection (libnghttp2, V3 shape)."""

    name = "albatross.http2.H2Connection"

    def __init__(self) -> None:
        self.conn = H2Connection(max_requests=10_000_000)  # the recording holds more than ALB's 10,000

    def run(self, batches: list[bytes]) -> list[bytes]:
        conn, outputs = self.conn, []
        for batch in batches:
            for event in conn.receive_data(batch):
                if type(event) is RequestReceived:
                    conn.submit_response(event.stream_id, 200, RESPONSE, BODY)
            outputs.append(conn.data_to_send())
        return outputs


def record(rounds: int) -> list[bytes]:
    client, server, batches = new_client(), H2Server(), []
    for r in range(rounds):
        batches.append(client_round(client, r))
        client_absorb(client, server.run([batches[-1]])[0])
    return batches


def verify(batches: list[bytes], outputs: list[bytes]) -> None:
    client, done = new_client(), 0
    for r, (batch, output) in enumerate(zip(batches, outputs)):
        if client_round(client, r) != batch:
            raise AssertionError(f"round {r}: the client's bytes differ from the recording")
        completed, bad = client_absorb(client, output)
        if bad:
            raise AssertionError(f"round {r}: {bad} malformed responses")
        done += completed
    if done != len(batches) * PER_ROUND:
        raise AssertionError(f"{done} responses, expected {len(batches) * PER_ROUND}")


def measure(server_cls, batches: list[bytes], repeat: int) -> list[float]:
    per_request = []
    for _ in range(repeat):
        server = server_cls()
        start = time.perf_counter()
        outputs = server.run(batches)
        elapsed = time.perf_counter() - start
        verify(batches, outputs)
        per_request.append(elapsed / (len(batches) * PER_ROUND) * 1e6)
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    batches = record(args.rounds)
    total = len(batches) * PER_ROUND
    print(f"{total} requests in {len(batches)} batches, {sum(map(len, batches))} input bytes")
    results = {cls.name: measure(cls, batches, args.repeat) for cls in (H2Server, AlbatrossServer)}
    print(f"{'server':32} {'best µs/req':>12} {'median':>8} {'req/s (best)':>13}")
    for name, values in results.items():
        best = min(values)
        print(f"{name:32} {best:12.2f} {statistics.median(values):8.2f} {1e6 / best:13,.0f}")
    h2_best, alb_best = (min(v) for v in results.values())
    print(f"speed-up: {h2_best / alb_best:.1f}x (all outputs verified by a replaying h2 client)")


if __name__ == "__main__":
    main()

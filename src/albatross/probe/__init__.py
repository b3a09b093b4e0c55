"""``albatross probe https://host:port``: the seed report's TLS checks against any HTTPS server.

The checks (ALPN, NPN, session tickets and resumption, protocol versions, renegotiation, OCSP
stapling, False Start preconditions, HTTP/2 SETTINGS, the certificate) run on Albatross's own
OpenSSL and libnghttp2 binding in client mode (:mod:`albatross.tls.client`,
:mod:`albatross.http2.client`). ``client`` holds the blocking I/O, ``checks`` the procedures,
``findings`` the results, ``report`` the table and JSON. See docs/probe.md.
"""

from albatross.probe.checks import Findings, run_checks
from albatross.probe.client import Dialer, ProbeError, Target, parse_target, resolve
from albatross.probe.report import document, format_json, format_table

__all__ = ["Dialer", "Findings", "ProbeError", "Target", "document", "format_json", "format_table",
           "parse_target", "probe", "resolve", "run_checks"]


def probe(url: str, *, sni: str | None = None, timeout: float = 10.0) -> Findings:
    """Run every check against ``url``. Raises :class:`ProbeError` when the server cannot be
    reached or the first TLS handshake fails."""
    targets = resolve(parse_target(url, sni, timeout))
    first = Dialer(targets[0])
    return run_checks([first] + [first.with_target(t) for t in targets[1:]])

"""The probe's pure parts: URL and SNI rules, how findings are phrased, the table and JSON."""

from __future__ import annotations

import json
import socket

import pytest

from albatross.cli import main
from albatross.probe import ProbeError, parse_target
from albatross.probe.checks import Findings, _Tls12, check_false_start
from albatross.probe.client import Target
from albatross.probe.findings import Alpn, AlpnOffer, Http2, Npn, Resumption, Ticket
from albatross.probe.report import document, format_table
from albatross.tls.client import CipherInfo
from albatross.tls.connection import HandshakeInfo


@pytest.mark.parametrize("url, host, port, path, sni", [
    ("https://example.test", "example.test", 443, "/", "example.test"),
    ("https://Example.test:8443/x?y", "example.test", 8443, "/x", "example.test"),
    ("example.test:8443", "example.test", 8443, "/", "example.test"),
    ("https://127.0.0.1:8443", "127.0.0.1", 8443, "/", None),
    ("https://[::1]:8443/", "::1", 8443, "/", None),
])
def test_targets_and_default_sni(url: str, host: str, port: int, path: str, sni: str | None) -> None:
    t = parse_target(url)
    assert (t.host, t.port, t.path, t.sni) == (host, port, path, sni)


def test_sni_override_and_authority() -> None:
    assert parse_target("https://127.0.0.1:8443", sni="a.test").sni == "a.test"
    assert parse_target("https://[::1]:8443").authority == "[::1]:8443"
    assert parse_target("https://a.test:443").authority == "a.test"


@pytest.mark.parametrize("url", ["http://a.test", "ftp://a.test", "https://a.test:99999", "https://:8443"])
def test_unusable_urls(url: str) -> None:
    with pytest.raises(ProbeError):
        parse_target(url)


def test_a_name_that_does_not_resolve_exits_2(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert main(["probe", "https://nowhere.test"]) == 2
    err = capsys.readouterr().err
    assert err == "albatross: error: cannot resolve nowhere.test: Name or service not known\n"


def _offers(a: str | None, b: str | None) -> Alpn:
    return Alpn((AlpnOffer(("http/1.1", "h2"), a, "TLSv1.3"), AlpnOffer(("h2", "http/1.1"), b, "TLSv1.3")))


@pytest.mark.parametrize("a, b, expected", [
    ("h2", "h2", "h2"),
    ("http/1.1", "h2", "client's order"),
    ("http/1.1", "http/1.1", "http/1.1"),
    (None, None, "none"),
    ("h2", "http/1.1", "h2 / http/1.1"),
])
def test_alpn_preference(a: str | None, b: str | None, expected: str) -> None:
    assert _offers(a, b).preference()[0] == expected


def _tls12(cipher: str, kx: str, aead: bool, alpn: str | None) -> _Tls12:
    info = HandshakeInfo("TLSv1.2", cipher, alpn, None, "a.test", False)
    return _Tls12(info, CipherInfo(cipher, kx, aead, "X25519"), None)


NO_NPN = Npn(("h2", "http/1.1"), None, None, "TLSv1.2")


@pytest.mark.parametrize("tls12, npn, met, says", [
    (_tls12("ECDHE-RSA-AES128-GCM-SHA256", "KxECDHE", True, "h2"), NO_NPN, True, "ALPN negotiated h2"),
    (_tls12("ECDHE-RSA-CHACHA20-POLY1305", "KxECDHE", True, None),
     Npn(("h2", "http/1.1"), ("h2",), "h2", "TLSv1.2"), True, "NPN negotiated h2"),
    (_tls12("ECDHE-RSA-AES128-SHA256", "KxECDHE", False, "h2"), NO_NPN, False, "not one of the AEAD ciphers"),
    (_tls12("AES128-GCM-SHA256", "KxRSA", True, "h2"), NO_NPN, False, "not forward-secret (RSA key exchange)"),
    (_tls12("ECDHE-ECDSA-AES128-CCM", "KxECDHE", True, "h2"), NO_NPN, False, "not one of the AEAD ciphers"),
    (_tls12("ECDHE-RSA-AES128-GCM-SHA256", "KxECDHE", True, None), NO_NPN, False, "neither ALPN nor NPN"),
])
def test_false_start_preconditions(tls12: _Tls12, npn: Npn, met: bool, says: str) -> None:
    finding = check_false_start(tls12, npn)
    assert finding.met is met
    assert says in "; ".join(finding.reasons)


def test_h2_settings_rows_name_what_was_not_sent() -> None:
    rows = {r.check: r for r in Http2("/", "h2", ((3, 128), (2, 0), (0x99, 7)), 200, "x").rows()}
    assert rows["HTTP/2 MAX_CONCURRENT_STREAMS"].result == "128"
    assert (rows["HTTP/2 MAX_FRAME_SIZE"].result, rows["HTTP/2 MAX_FRAME_SIZE"].detail) == ("not sent", "default 16384")
    assert rows["HTTP/2 ENABLE_PUSH"].result == "0" and rows["HTTP/2 0x99"].result == "7"
    assert rows["HTTP/2 HEAD /"].result == "200"
    assert [r.result for r in Http2("/", "http/1.1", None, None, None).rows()] == ["not negotiated"]


def test_table_and_json_carry_the_same_rows() -> None:
    target = Target("a.test", 8443, "/", "a.test", 10.0, socket.AF_INET, ("127.0.0.1", 8443))
    findings = Findings(target, (_offers("h2", "h2"), Ticket(True, 43200, 192),
                                 Resumption("TLS 1.3", None, "the server does not do TLS 1.3")))
    table = format_table(findings).splitlines()
    assert table[0] == "albatross probe https://a.test:8443/  (127.0.0.1:8443, SNI a.test)"
    header = table[2]
    r, d = header.index("RESULT"), header.index("DETAIL")
    parsed = [(line[:r].rstrip(), line[r:d].rstrip(), line[d:]) for line in table[3:]]
    doc = json.loads(json.dumps(document(findings)))
    assert parsed == [(c["check"], c["result"], c["detail"]) for c in doc["checks"]]
    assert ("session ticket, TLS 1.2", "issued, hint 43200 s", "192-byte ticket, lifetime hint 43200 s") in parsed
    assert doc["target"] == {"host": "a.test", "port": 8443, "path": "/", "address": "127.0.0.1:8443", "sni": "a.test"}

"""The seed's experiments (shared/docs/seed-acceptance.md rows 1-8), run with real clients.

Each test names its row. Rows 9-11 (False Start, key-log decryption, close_notify) are in
test_false_start.py; resumption across processes is in test_ticket_sharing.py.
"""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from tests.helpers import Albatross, fields, require_tool, run, s_client


@pytest.fixture(scope="module")
def server(pki, site_ecdsa, site_rsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), *site_ecdsa.args()) as proc:
        yield proc


@pytest.fixture(scope="module")
def npn_only(pki, site_rsa):  # type: ignore[no-untyped-def]
    """A listener whose ALPN is switched off (alpn_policy: []), so clients fall back to NPN."""
    with Albatross(*site_rsa.args(), "--alpn", "") as proc:
        yield proc


@pytest.fixture(scope="module")
def legacy(pki, site_rsa):  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--policy", "ELBSecurityPolicy-2016-08") as proc:
        yield proc


def curl(*args: str) -> str:
    return run(["curl", "-sS", "-k", "-v", *args], timeout=30).stdout


# -- row 1: ALPN ----------------------------------------------------------------------------


def test_row1_curl_http2_over_alpn(server: Albatross) -> None:
    out = curl("-I", "--http2", f"https://{server.address}/")
    assert "ALPN: offers h2" in out
    assert "ALPN: server accepted h2" in out
    assert re.search(r"^< HTTP/2 200", out, re.M)
    # The origin's own headers come through (content-length kept on HEAD).
    for header in ("content-type: text/html; charset=UTF-8", "etag: ", "last-modified: ", "content-length: "):
        assert f"< {header}" in out


def test_row1_max_concurrent_streams_is_128(server: Albatross) -> None:
    # curl 7.88 prints its "MAX_CONCURRENT_STREAMS == 128" note only in debug builds; nghttp
    # shows the SETTINGS frame itself.
    out = run(["nghttp", "-nv", f"https://{server.address}/"], timeout=30).stdout
    settings = out.split("recv SETTINGS frame", 1)[1].split("send SETTINGS frame", 1)[0]
    assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]" in settings
    assert re.search(r":status: 200", out)


@pytest.mark.parametrize("offer", ["h2,http/1.1", "http/1.1,h2"])
def test_row1_server_preference_wins_whatever_the_client_order(server: Albatross, offer: str) -> None:
    out = s_client(server.address, "-alpn", offer)
    assert "ALPN protocol: h2" in out


def test_row1_h2_not_offered_when_http2_disabled(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--no-http2") as proc:
        out = s_client(proc.address, "-alpn", "h2,http/1.1")
        assert "ALPN protocol: http/1.1" in out
        out = s_client(proc.address, "-tls1_2", "-nextprotoneg", "h2,http/1.1")
        assert "Next protocol: (2) http/1.1" in out or "Next protocol: (1) http/1.1" in out


# -- row 2: NPN ---------------------------------------------------------------------------------


def test_row2_npn_negotiates_h2(npn_only: Albatross) -> None:
    out = s_client(npn_only.address, "-tls1_2", "-nextprotoneg", "h2,http/1.1")
    assert "Next protocol: (1) h2" in out
    assert "No ALPN negotiated" in out


def test_row2_npn_request_over_http2_with_nghttp(npn_only: Albatross) -> None:
    out = run(["nghttp", "-nv", f"https://{npn_only.address}/"], timeout=30).stdout
    assert "[NPN] server offers:" in out
    assert re.search(r"\* h2\s", out) or "h2" in out.split("[NPN] server offers:")[1][:40]
    assert "The negotiated protocol: h2" in out
    assert re.search(r":status: 200", out)


def test_row2_npn_only_client_gets_tls12_and_h2_on_the_default_policy(server: Albatross) -> None:
    # Intended difference: NPN exists only up to TLS 1.2, so a client that offers NPN and no
    # ALPN is held at TLS 1.2 (where NPN works) instead of getting TLS 1.3 without any protocol.
    out = s_client(server.address, "-nextprotoneg", "h2,http/1.1")
    assert re.search(r"^New, TLSv1.2,", out, re.M)
    assert "Next protocol: (1) h2" in out


def test_row2_alpn_clients_still_get_tls13(server: Albatross) -> None:
    out = s_client(server.address, "-nextprotoneg", "h2,http/1.1", "-alpn", "h2")
    assert re.search(r"^New, TLSv1.3,", out, re.M)
    assert "ALPN protocol: h2" in out


def test_row2_no_npn_under_a_tls13_only_policy(site_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--policy", "ELBSecurityPolicy-TLS13-1-3-2021-06") as proc:
        out = s_client(proc.address, "-nextprotoneg", "h2,http/1.1")
        assert re.search(r"^New, TLSv1.3,", out, re.M)
        assert "Next protocol: (1)" not in out


# -- row 3: no ALPN, no NPN: HTTP/1.1 keep-alive ---------------------------------------------------


def test_row3_http11_without_alpn(server: Albatross) -> None:
    out = curl("-I", "--no-alpn", f"https://{server.address}/")
    assert "ALPN" not in out.split("SSL connection using")[0].replace("ALPN: offers", "") or "offers" not in out
    assert re.search(r"^< HTTP/1.1 200 OK", out, re.M)
    assert re.search(r"^< Connection: keep-alive", out, re.M)


def test_row3_http11_keep_alive_reuses_the_connection(server: Albatross) -> None:
    url = f"https://{server.address}/"
    out = curl("--http1.1", url, url)
    assert out.count("< HTTP/1.1 200 OK") == 2
    assert "Re-using existing connection" in out


# -- rows 4-6: one s_client -status run ------------------------------------------------------------


def test_row4_no_ocsp_staple_without_a_file(server: Albatross) -> None:
    out = s_client(server.address, "-status")
    assert "OCSP response: no response sent" in out


def test_row4_ocsp_staple_when_configured(pki, site_rsa) -> None:  # type: ignore[no-untyped-def]
    staple = pki.ocsp_response(site_rsa)
    with Albatross(*site_rsa.args(str(staple))) as proc:
        for version in ("-tls1_2", "-tls1_3"):
            out = s_client(proc.address, "-status", version)
            assert "OCSP Response Status: successful" in out
            assert "Cert Status: good" in out


def test_row4_expired_staple_is_not_sent(pki, site_rsa) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    staple = pki.ocsp_response(site_rsa, this_update=dt.timedelta(days=-3), next_update=dt.timedelta(days=-1))
    with Albatross(*site_rsa.args(str(staple))) as proc:
        out = s_client(proc.address, "-status")
        assert "OCSP response: no response sent" in out
        assert "expired" in proc.log and str(staple) in proc.log


def test_row4_staple_file_reloaded_when_it_changes(pki, site_rsa, tmp_path) -> None:  # type: ignore[no-untyped-def]
    staple = tmp_path / "staple.der"
    staple.write_bytes(pki.ocsp_response(site_rsa).read_bytes())
    with Albatross(*site_rsa.args(str(staple))) as proc:
        assert "Cert Status: good" in s_client(proc.address, "-status")
        revoked = pki.ocsp_response(site_rsa, status="revoked").read_bytes()
        tmp = tmp_path / "staple.tmp"
        tmp.write_bytes(revoked)
        tmp.replace(staple)
        proc.wait_for(lambda: "Cert Status: revoked" in s_client(proc.address, "-status"), timeout=10)


def test_row5_secure_renegotiation_is_advertised(server: Albatross) -> None:
    out = s_client(server.address, "-tls1_2")
    assert "Secure Renegotiation IS supported" in out


def test_row6_tls10_aes128_sha_under_2016_08(legacy: Albatross) -> None:
    out = s_client(legacy.address, "-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0")
    f = fields(out, "Protocol", "Cipher")
    assert f == {"Protocol": "TLSv1", "Cipher": "AES128-SHA"}


def test_row6_default_policy_refuses_tls10(server: Albatross) -> None:
    out = s_client(server.address, "-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0")
    assert "Cipher is (NONE)" in out or "no protocols available" in out or "alert protocol version" in out


# -- row 7: session tickets and resumption ------------------------------------------------------


def test_row7_ticket_lifetime_hint_and_tls12_resumption(server: Albatross) -> None:
    out = s_client(server.address, "-tls1_2", "-reconnect")
    assert "TLS session ticket lifetime hint: 43200 (seconds)" in out
    outcomes = re.findall(r"^(New|Reused), ", out, re.M)
    assert outcomes[0] == "New" and outcomes[1:] == ["Reused"] * 5
    # Resumed TLS 1.2 tickets are not renewed, so every ticket a client holds carries 43200.
    assert "lifetime hint: 0 " not in out


def test_row7_session_id_resumption_without_tickets(server: Albatross) -> None:
    out = s_client(server.address, "-tls1_2", "-no_ticket", "-reconnect")
    outcomes = re.findall(r"^(New|Reused), ", out, re.M)
    assert outcomes[0] == "New" and outcomes[1:] == ["Reused"] * 5
    assert "TLS session ticket:" not in out


def test_row7_tls13_resumption_with_sess_out_and_in(server: Albatross, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sess = tmp_path / "tls13.sess"
    # s_client reads the post-handshake tickets only once it waits for data: send a request.
    first = s_client(server.address, "-tls1_3", "-sess_out", str(sess), "-ign_eof",
                     input="GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert re.search(r"^New, TLSv1.3,", first, re.M) and sess.exists()
    second = s_client(server.address, "-tls1_3", "-sess_in", str(sess))
    assert re.search(r"^Reused, TLSv1.3", second, re.M)


# -- row 8: client-initiated renegotiation refused ------------------------------------------------


def test_row8_renegotiation_refused_while_others_are_served(server: Albatross) -> None:
    require_tool("openssl")
    proc = subprocess.Popen(["openssl", "s_client", "-connect", server.address, "-tls1_2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []
    handshake_done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("    Verify return code") or "Extended master secret" in line:
                handshake_done.set()
        handshake_done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert handshake_done.wait(15)
    proc.stdin.write("R\n")
    proc.stdin.flush()
    # While that connection renegotiates and is refused, another client is served normally.
    other = curl("--http1.1", f"https://{server.address}/healthz")
    assert "< HTTP/1.1 200 OK" in other
    proc.wait(15)
    t.join(5)
    out = "".join(lines)
    assert "Secure Renegotiation IS supported" in out
    assert "RENEGOTIATING" in out
    assert "no renegotiation" in out
    assert "Traceback" not in server.log


# -- certificates: SNI and ECDSA preference ------------------------------------------------------


def test_ecdsa_capable_client_gets_ecdsa_and_others_rsa(server: Albatross) -> None:
    ecdsa = s_client(server.address, "-servername", "a.test", "-tls1_2")
    assert "Peer signature type: ECDSA" in ecdsa or "Server public key is 256 bit" in ecdsa
    rsa = s_client(server.address, "-servername", "a.test", "-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
    assert "Server public key is 2048 bit" in rsa


def _served_certificate(out: str) -> str:
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, out
    return m.group(0).strip()


def test_sni_exact_then_wildcard_then_default(site_rsa, other_rsa, wildcard_rsa) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), *other_rsa.args(), *wildcard_rsa.args()) as proc:
        def served(name: str | None) -> str:
            args = ["-servername", name] if name else ["-noservername"]
            return _served_certificate(s_client(proc.address, *args))

        def pem(cert) -> str:  # type: ignore[no-untyped-def]
            return cert.cert.read_text().strip()

        assert served("b.test") == pem(other_rsa)
        assert served("B.Test") == pem(other_rsa)  # host names are case-insensitive
        assert served("x.w.test") == pem(wildcard_rsa)
        assert served("y.z.w.test") == pem(site_rsa)  # a wildcard covers one label only
        assert served("unknown.test") == pem(site_rsa)
        assert served(None) == pem(site_rsa)

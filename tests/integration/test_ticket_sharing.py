"""Session tickets shared by processes through the key file, across a rotation (seed row 7)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from albatross.tls.ticketkeys import read_key_file
from tests.helpers import Albatross, s_client

REQUEST = "GET /healthz HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"


def rotate(path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "albatross", "tls-keys", "rotate", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert re.match(rf"{re.escape(str(path))}: \d keys, encrypting with key name [0-9a-f]{{32}}", out), out
    return out


def new_session(address: str, sess: Path, *version: str) -> str:
    """A full handshake whose session (with its ticket) is saved to ``sess``."""
    out = s_client(address, *version, "-sess_out", str(sess), "-ign_eof", input=REQUEST)
    assert re.search(r"^New, ", out, re.M), out
    return out


def resumes(address: str, sess: Path, *version: str) -> bool:
    out = s_client(address, *version, "-sess_in", str(sess), "-ign_eof", input=REQUEST)
    assert "HTTP/1.1 200 OK" in out, out
    return re.search(r"^Reused, ", out, re.M) is not None


def ticket_key_name(s_client_output: str) -> str:
    """The first 16 bytes of the TLS 1.2 ticket as s_client dumps it: the key name."""
    m = re.search(r"TLS session ticket:\n\s+0000 - ([0-9a-f -]+?)  ", s_client_output)
    assert m, s_client_output
    return m.group(1).replace(" ", "").replace("-", "")


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "ticket-keys"
    rotate(path)
    return path


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_ticket_from_one_process_resumes_on_another(site_rsa, key_file: Path, tmp_path: Path, version: str) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--ticket-keys", str(key_file)) as a, \
         Albatross(*site_rsa.args(), "--ticket-keys", str(key_file)) as b:
        sess = tmp_path / "a.sess"
        new_session(a.address, sess, version)
        assert resumes(b.address, sess, version)
        # And after one rotation, on both sides, the old ticket still resumes.
        rotate(key_file)
        assert resumes(b.address, sess, version)
        assert resumes(a.address, sess, version)


def test_unrelated_keys_do_not_resume(site_rsa, key_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other-keys"
    rotate(other)
    with Albatross(*site_rsa.args(), "--ticket-keys", str(key_file)) as a, \
         Albatross(*site_rsa.args(), "--ticket-keys", str(other)) as b:
        sess = tmp_path / "a.sess"
        new_session(a.address, sess, "-tls1_2")
        assert not resumes(b.address, sess, "-tls1_2")


def test_rotation_is_picked_up_and_old_keys_age_out(site_rsa, key_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--ticket-keys", str(key_file)) as a:
        old = tmp_path / "old.sess"
        out = new_session(a.address, old, "-tls1_2")
        assert ticket_key_name(out) == read_key_file(str(key_file))[0][:16].hex()
        rotate(key_file)
        newest = read_key_file(str(key_file))[0][:16].hex()
        # The server notices the new file within a second or so: wait until it encrypts with it.
        latest = tmp_path / "latest.sess"
        a.wait_for(lambda: ticket_key_name(new_session(a.address, latest, "-tls1_2")) == newest, timeout=15)
        a.wait_for_log(r"session ticket keys reloaded from .* \(2 keys\)")
        # Three rotations later the first key is gone: its ticket no longer resumes.
        assert resumes(a.address, old, "-tls1_2")
        for _ in range(2):
            rotate(key_file)
        assert len(read_key_file(str(key_file))) == 3
        a.wait_for(lambda: not resumes(a.address, old, "-tls1_2"), timeout=15)
        assert resumes(a.address, latest, "-tls1_2")


def test_broken_key_file_on_reload_keeps_the_old_keys(site_rsa, key_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Albatross(*site_rsa.args(), "--ticket-keys", str(key_file)) as a:
        sess = tmp_path / "a.sess"
        new_session(a.address, sess, "-tls1_2")
        key_file.write_text("not base64 at all!\n")
        a.wait_for_log(rf"session ticket key file not reloaded, keeping the previous keys: {re.escape(str(key_file))}: "
                       r"line 1: not valid base64", timeout=15)
        assert resumes(a.address, sess, "-tls1_2")

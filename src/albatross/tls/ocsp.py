"""OCSP stapling (beyond ALB): a DER OCSP response file per certificate, kept in memory.

The response is fetched by something else (``openssl ocsp``, certbot, a cron job) and
written to the configured file. Albatross checks it at startup (a file that is unreadable,
not an OCSP response, unsuccessful or about another certificate is a startup error naming
the file), re-reads it when it changes, and staples it only while it is fresh: after its
``nextUpdate`` it is no longer sent, as a stale staple would make strict clients fail hard.
A broken replacement is logged and the previous response kept until it expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from cryptography import x509
from cryptography.x509 import ocsp

from albatross.errors import ConfigError

log = logging.getLogger("albatross.tls")


def parse_response(der: bytes, path: str, leaf: x509.Certificate) -> ocsp.OCSPResponse:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise ConfigError(path, f"not a DER OCSP response ({exc})") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ConfigError(path, f"OCSP response status is {response.response_status.name}")
    if response.serial_number != leaf.serial_number:
        raise ConfigError(
            path, f"OCSP response is for serial {response.serial_number:x}, the certificate's is {leaf.serial_number:x}"
        )
    return response


class OcspStaple:
    """The current stapled response for one certificate."""

    def __init__(self, path: str, leaf: x509.Certificate) -> None:
        self.path = path
        self.leaf = leaf
        self.der: bytes | None = None
        self.next_update: dt.datetime | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._load(strict=True)

    def _load(self, *, strict: bool) -> None:
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                der = f.read()
            response = parse_response(der, self.path, self.leaf)
        except OSError as exc:
            error: ConfigError = ConfigError(self.path, f"cannot read OCSP response: {exc.strerror or exc}")
            if strict:
                raise error from None
            log.error("OCSP staple not reloaded, keeping the previous one: %s", error)
            return
        except ConfigError as exc:
            if strict:
                raise
            log.error("OCSP staple not reloaded, keeping the previous one: %s", exc)
            return
        self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        self.der = der
        self.next_update = response.next_update_utc
        if not self.fresh():
            log.warning("OCSP response %s expired at %s: not stapled", self.path, self.next_update)

    def refresh(self) -> None:
        """Re-read the file if it changed (called off the handshake path)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (st.st_ino, st.st_mtime_ns, st.st_size) != self._stamp:
            self._load(strict=False)

    def fresh(self, now: dt.datetime | None = None) -> bool:
        if self.der is None:
            return False
        if self.next_update is None:
            return True
        return (now or dt.datetime.now(dt.timezone.utc)) < self.next_update

    def current(self, now: dt.datetime | None = None) -> bytes | None:
        """The DER bytes to staple now, or None when there is nothing fresh to send."""
        return self.der if self.fresh(now) else None

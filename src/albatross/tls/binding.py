"""Load the compiled OpenSSL binding and turn OpenSSL's error queue into Python exceptions.

Only ``albatross.tls`` imports ``albatross._native`` for OpenSSL names. Every call whose
result matters is checked through :func:`check`; the error queue is cleared before calls
whose result goes to ``SSL_get_error`` and drained after every failure, so a stale entry
never leaks into another connection's result (the queue is per thread, shared by all
connections on the loop).
"""

from __future__ import annotations

from dataclasses import dataclass

from albatross._loader import ffi, lib

__all__ = ["ErrorRecord", "OpenSSLError", "check", "drain_errors", "ffi", "lib", "openssl_version"]


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One entry of OpenSSL's error queue, matched on ``(lib, reason)`` codes, never on text."""

    code: int
    lib: int
    reason: int
    text: str

    def matches(self, lib_code: int, reason: int) -> bool:
        return self.lib == lib_code and self.reason == reason


class OpenSSLError(Exception):
    """An OpenSSL call failed; ``records`` is the drained error queue (oldest first)."""

    def __init__(self, message: str, records: tuple[ErrorRecord, ...] = ()) -> None:
        self.records = records
        detail = "; ".join(r.text for r in records)
        super().__init__(f"{message}: {detail}" if detail else message)

    def has(self, lib_code: int, reason: int) -> bool:
        return any(r.matches(lib_code, reason) for r in self.records)


_errbuf = ffi.new("char[]", 256)


def drain_errors() -> tuple[ErrorRecord, ...]:
    """Empty the thread's OpenSSL error queue and return its entries, oldest first."""
    records = []
    while True:
        code = lib.ERR_get_error()
        if code == 0:
            return tuple(records)
        lib.ERR_error_string_n(code, _errbuf, 256)
        records.append(
            ErrorRecord(code, lib.ERR_GET_LIB(code), lib.ERR_GET_REASON(code), ffi.string(_errbuf).decode())
        )


def check(ok: int, what: str) -> None:
    """Raise :class:`OpenSSLError` with the drained queue when an OpenSSL call returned <= 0."""
    if ok <= 0:
        raise OpenSSLError(what, drain_errors())


def openssl_version() -> str:
    return ffi.string(lib.OpenSSL_version(lib.OPENSSL_VERSION)).decode()


lib.ERR_clear_error()

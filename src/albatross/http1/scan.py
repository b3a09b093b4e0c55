"""The fast path's view of an HTTP/1.1 field block: one C call instead of a Python call per field.

:func:`scan_request` and :func:`scan_response` run the binding's ``alb_h1_scan_*`` over the raw
block (the bytes between the start line and the empty line). They return ``None`` when the
block is not in the canonical ``Name: value`` form or holds a field the fast path leaves to the
general path (``Transfer-Encoding``, ``Upgrade``, ``Expect``, a repeated Host, Content-Length,
X-Forwarded-For, X-Amzn-Trace-Id, Cookie or Connection, a Connection other than ``keep-alive``
or ``close``, names outside ``[A-Za-z0-9-]``, obs-fold, control characters). Otherwise the
result holds the values the request path reads and ``kept``: every other line, unchanged and
in order, ready to be spliced into the head sent on.

Which lines are kept (``alb_http1.c`` has the tables): for a request, Host, Content-Length,
Connection, X-Forwarded-*, X-Amzn-Trace-Id, X-Amzn-Tls-*, Keep-Alive, Proxy-Connection, TE and
HTTP2-Settings are dropped (the builder writes its own); for a response, Content-Length,
Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade and HTTP2-Settings are.

The general path is the reference: for every block this accepts, the fields it implies are the
ones llhttp reports (:func:`split_fields` rebuilds them), so both paths forward the same bytes;
``tests/http1/test_fast_path.py`` checks that property.
"""

from __future__ import annotations

from albatross._loader import ffi, lib
from albatross.http.messages import (
    F_CONNECTION,
    F_CONTENT_LENGTH,
    F_COOKIE,
    F_DATE,
    F_HOST,
    F_TRACE,
    F_USER_AGENT,
    F_XFF,
)

__all__ = ["COOKIE", "CONNECTION", "CONTENT_LENGTH", "DATE", "HOST", "TRACE", "USER_AGENT", "XFF", "FieldScan",
           "scan_request", "scan_response", "split_fields"]

_KINDS = int(lib.ALB_H1_KINDS)
_OUT_LEN = 2 * _KINDS + 2
_ABSENT = 0xFFFFFFFF
_MAX_BLOCK = 64 * 1024 + 16 * 1024  # larger blocks are the general path's (it answers 400/414/502)
_out = ffi.new("uint32_t[]", _OUT_LEN)
_kept = ffi.new("uint8_t[]", _MAX_BLOCK)
_unpack = ffi.unpack
_buffer = ffi.buffer
_scan_request = lib.alb_h1_scan_request
_scan_response = lib.alb_h1_scan_response


# Slots of the scan's output (alb_http1.c); the response scan reuses COOKIE for Set-Cookie.
HOST, CONTENT_LENGTH, XFF, TRACE, COOKIE, USER_AGENT, CONNECTION, DATE = (
    F_HOST, F_CONTENT_LENGTH, F_XFF, F_TRACE, F_COOKIE, F_USER_AGENT, F_CONNECTION, F_DATE)


class FieldScan:
    """A canonical field block: ``kept`` lines, the field count, and the recorded values.

    ``get(slot)`` is the value of the first line of that kind, ``None`` when absent (request
    slots: HOST, CONTENT_LENGTH, XFF, TRACE, COOKIE, USER_AGENT, CONNECTION; response slots:
    CONTENT_LENGTH, CONNECTION, DATE, COOKIE for the first Set-Cookie). Values are sliced only
    when asked for.
    """

    __slots__ = ("block", "kept", "fields", "_out")

    def __init__(self, block: bytes, kept: bytes, out: list[int]) -> None:
        self.block = block
        self.kept = kept
        self.fields: int = out[-1]
        self._out = out

    def get(self, slot: int) -> bytes | None:
        out = self._out
        at = out[2 * slot]
        if at == _ABSENT:
            return None
        return self.block[at:at + out[2 * slot + 1]]

    def has(self, slot: int) -> bool:
        return self._out[2 * slot] != _ABSENT

    def split(self) -> list[tuple[bytes, bytes]]:
        """The block as ``(name, value)`` pairs, exactly as llhttp reports them."""
        return split_fields(self.block)


def _result(block: bytes) -> FieldScan:
    out: list[int] = _unpack(_out, _OUT_LEN)
    kept_len = out[-2]
    kept = block if kept_len == len(block) else _buffer(_kept, kept_len)[:]
    return FieldScan(block, kept, out)


def scan_request(block: bytes) -> FieldScan | None:
    """The fast path's reading of a request's field block, or ``None`` for the general path."""
    if len(block) > _MAX_BLOCK or _scan_request(block, len(block), _kept, _out):
        return None
    return _result(block)


def scan_response(block: bytes) -> FieldScan | None:
    """The fast path's reading of a response's field block, or ``None`` for the general path."""
    if len(block) > _MAX_BLOCK or _scan_response(block, len(block), _kept, _out):
        return None
    return _result(block)


def split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(name, value)`` list llhttp reports for a canonical block (names as received)."""
    fields = []
    for line in block.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b": ")
        fields.append((name, value))
    return fields

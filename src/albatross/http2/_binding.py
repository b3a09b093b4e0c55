"""Load the compiled libnghttp2 binding. Only :mod:`albatross.http2` uses nghttp2 names."""

from __future__ import annotations

from albatross._loader import ffi, lib

__all__ = ["ffi", "lib", "nghttp2_version"]


def nghttp2_version() -> str:
    """Version string of the libnghttp2 loaded at run time."""
    return ffi.string(lib.nghttp2_version(0).version_str).decode()

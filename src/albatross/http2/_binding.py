"""Load the compiled libnghttp2 binding. Only :mod:`albatross.http2` uses nghttp2 names."""

from __future__ import annotations

try:
    from albatross._native import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "albatross._native is not built: run `pip install -e .` (needs gcc, libssl-dev and "
        "libnghttp2-dev)"
    ) from exc

EXPECTED_BINDING_VERSION = 2
if lib.ALBATROSS_BINDING_VERSION != EXPECTED_BINDING_VERSION:  # pragma: no cover
    raise ImportError(
        f"albatross._native is stale (binding version {lib.ALBATROSS_BINDING_VERSION}, "
        f"expected {EXPECTED_BINDING_VERSION}): rebuild it with `pip install -e .`"
    )

__all__ = ["ffi", "lib", "nghttp2_version"]


def nghttp2_version() -> str:
    """Version string of the libnghttp2 loaded at run time."""
    return ffi.string(lib.nghttp2_version(0).version_str).decode()

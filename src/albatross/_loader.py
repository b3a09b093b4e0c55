"""Load ``albatross._native`` once, with a clear error when it is missing or stale.

``albatross.tls``, ``albatross.http2`` and ``albatross.http1`` (its field-block scanner) are
the only packages that use the compiled module; they get ``ffi`` and ``lib`` from here.
"""

from __future__ import annotations

try:
    from albatross._native import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "albatross._native is not built: run `pip install -e .` (needs gcc, libssl-dev and "
        "libnghttp2-dev) or `make test`, which does it for you"
    ) from exc

# The build script's BINDING_VERSION: raised whenever the declarations change in a way the
# Python layer depends on, so a stale compiled module fails here rather than mysteriously.
EXPECTED_BINDING_VERSION = 4
if lib.ALBATROSS_BINDING_VERSION != EXPECTED_BINDING_VERSION:  # pragma: no cover
    raise ImportError(
        f"albatross._native is stale (binding version {lib.ALBATROSS_BINDING_VERSION}, "
        f"expected {EXPECTED_BINDING_VERSION}): rebuild it with `pip install -e .`"
    )

__all__ = ["ffi", "lib"]

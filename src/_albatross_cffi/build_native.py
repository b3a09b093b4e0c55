"""Build script for ``albatross._native``: one cffi API-mode module binding OpenSSL and libnghttp2.

This file and the declaration modules beside it are used at build time only (``setup.py``
names this file in ``cffi_modules``); they are never imported at run time. Each declaration
module defines four strings, in the layout pyca/cryptography uses for its own binding:

* ``INCLUDES``: the C ``#include`` lines;
* ``TYPES``: opaque types, structs and constants for ``cdef``;
* ``FUNCTIONS``: prototypes for ``cdef`` (macros are declared as functions: API mode compiles them);
* ``CUSTOMIZATIONS``: C helpers compiled into the module (callbacks that must never run Python
  on the hot path, thin wrappers around macros).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
# Raised whenever the declarations change in a way the Python layer depends on; the Python
# layer checks it at import so that a stale compiled module gives a clear error.
BINDING_VERSION = 4
MODULES = ["openssl", "nghttp2", "nghttp2_session", "http1"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_albatross_cffi_{name}", os.path.join(HERE, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_ffi() -> FFI:
    modules = [_load(name) for name in MODULES]
    ffi = FFI()
    ffi.cdef("static const int ALBATROSS_BINDING_VERSION;")
    for module in modules:
        ffi.cdef(module.TYPES)
        ffi.cdef(module.FUNCTIONS)
    source = "\n".join(m.INCLUDES for m in modules)
    source += f"\n#define ALBATROSS_BINDING_VERSION {BINDING_VERSION}\n"
    source += "\n".join(m.CUSTOMIZATIONS for m in modules)
    ffi.set_source(
        "albatross._native",
        source,
        # libssl before libcrypto: the linker resolves left to right.
        libraries=["ssl", "crypto", "nghttp2"],
        include_dirs=[HERE],  # the C files beside this script (alb_http1.c)
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    )
    return ffi


ffibuilder = build_ffi()

if __name__ == "__main__":
    sys.exit(ffibuilder.compile(tmpdir=os.path.join(HERE, "..", "..", "build", "cffi"), verbose=True) and 0)

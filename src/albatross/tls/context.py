"""The server side of a TLS listener: one ``SSL_CTX`` per certificate set, chosen by SNI.

Theory of operation
-------------------
A listener has several certificates; the first is the default. For each SNI name the
certificates that match it exactly win over those that match it by wildcard; among those,
the best RSA and the best ECDSA certificate (larger key, then later expiry) are loaded into
one ``SSL_CTX``. OpenSSL keeps one key slot per algorithm and picks by the client's signature
algorithms, which gives ALB's rule: an ECDSA-capable client gets the ECDSA certificate.

Every connection starts on the default context; the SNI callback (Python, ``extern
"Python"``) swaps in the chosen one. OpenSSL reads the ticket callback, session cache and
timeout from the *initial* context and ALPN/NPN/OCSP/key-log callbacks from the chosen one,
so every context is configured identically (``_configure``). All contexts share one
session-id context, so sessions move between processes and hosts that share ticket keys.

ALPN, NPN, ticket keys and the key log are C callbacks (``_albatross_cffi/openssl.py``):
they run on every handshake and never enter Python. The SNI and OCSP callbacks need Python
state; they catch every exception (logged, default certificate / no staple), so nothing
escapes into OpenSSL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from albatross.errors import ConfigError
from albatross.tls.binding import OpenSSLError, check, drain_errors, ffi, lib
from albatross.tls.certs import ECDSA, RSA, CertificateSpec, LoadedCertificate, load_certificate, name_matches
from albatross.tls.ocsp import OcspStaple
from albatross.tls.policies import DEFAULT_POLICY, GROUPS, SecurityPolicy, get_policy
from albatross.tls.ticketkeys import TicketKeyRing

log = logging.getLogger("albatross.tls")

SESSION_ID_CONTEXT = b"albatross/1"
_VERSION_CODES = {"TLSv1": lib.TLS1_VERSION, "TLSv1.1": lib.TLS1_1_VERSION,
                  "TLSv1.2": lib.TLS1_2_VERSION, "TLSv1.3": lib.TLS1_3_VERSION}
_SNI_CACHE_LIMIT = 4096
_OPTIONS = lib.SSL_OP_NO_RENEGOTIATION | lib.SSL_OP_CIPHER_SERVER_PREFERENCE | lib.SSL_OP_NO_COMPRESSION
_MODES = lib.SSL_MODE_RELEASE_BUFFERS | lib.SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """Everything a TLS listener needs, in configuration terms."""

    certificates: tuple[CertificateSpec, ...]
    policy: str = DEFAULT_POLICY
    alpn_policy: tuple[str, ...] = ("h2", "http/1.1")  # () switches ALPN off
    http2_enabled: bool = True  # routing.http2.enabled
    ticket_lifetime_seconds: int = 43200
    session_cache_size: int = 20480


def wire_protocols(names: tuple[str, ...]) -> bytes:
    """ALPN/NPN wire format: each name prefixed with its length."""
    out = b""
    for name in names:
        raw = name.encode("ascii")
        if not 0 < len(raw) < 256:
            raise ConfigError("alpn_policy", f"invalid protocol name {name!r}")
        out += bytes([len(raw)]) + raw
    return out


def _protos(names: tuple[str, ...]) -> object:
    wire = wire_protocols(names)
    p = ffi.new("alb_protos *")
    if len(wire) > len(p.wire):
        raise ConfigError("alpn_policy", "protocol list too long")
    p.len = len(wire)
    ffi.memmove(p.wire, wire, len(wire))
    return p


@dataclass(slots=True)
class _Selection:
    """The certificates one SNI name gets: at most one per key type."""

    rsa: int | None = None
    ecdsa: int | None = None
    indexes: tuple[int, ...] = field(default=())


class ServerContext:
    """The SSL_CTX objects of one TLS listener and the state their callbacks read."""

    def __init__(self, settings: TLSSettings, tickets: TicketKeyRing, *, key_log: bool = False) -> None:
        if not settings.certificates:
            raise ConfigError("certificates", "an HTTPS listener needs at least one certificate")
        self.settings = settings
        self.policy: SecurityPolicy = get_policy(settings.policy)
        self.tickets = tickets
        self.key_log = key_log
        self.certificates = [load_certificate(spec) for spec in settings.certificates]
        self.staples: dict[int, OcspStaple] = {}  # X509* address -> staple
        self.certificate_files: dict[int, str] = {}  # X509* address -> its certificate file (for logs)
        self._staple_by_spec: dict[CertificateSpec, OcspStaple] = {}
        self._handle = ffi.new_handle(self)
        alpn = tuple(p for p in settings.alpn_policy if p != "h2" or settings.http2_enabled)
        npn = ("h2", "http/1.1") if settings.http2_enabled else ("http/1.1",)
        self._alpn = _protos(alpn)
        self._npn = _protos(npn) if self.policy.min_version != "TLSv1.3" else _protos(())
        self.alpn_protocols, self.npn_protocols = alpn, npn
        self._contexts: dict[tuple[int | None, int | None], object] = {}
        self._sni_cache: dict[bytes, object] = {}
        self.default_ctx = self._context_for(self._default_selection())
        self._check_every_certificate()

    # -- building contexts -----------------------------------------------------------------

    def _default_selection(self) -> _Selection:
        first = self.certificates[0]
        same = [i for i, c in enumerate(self.certificates) if set(c.names) == set(first.names)]
        sel = self._best(same)
        # The default certificate itself serves its key type, whatever the ranking says.
        if first.key_type == RSA:
            sel.rsa = 0
        else:
            sel.ecdsa = 0
        return sel

    def _best(self, indexes: list[int]) -> _Selection:
        sel = _Selection(indexes=tuple(indexes))
        for key_type in (RSA, ECDSA):
            of_type = [i for i in indexes if self.certificates[i].key_type == key_type]
            if of_type:
                best = max(of_type, key=lambda i: (self.certificates[i].rank, -i))
                setattr(sel, key_type.lower(), best)
        return sel

    def _check_every_certificate(self) -> None:
        """Load each certificate into a context now, so OpenSSL's own objections surface at startup."""
        for i, cert in enumerate(self.certificates):
            sel = _Selection(**{cert.key_type.lower(): i})
            self._context_for(sel)

    def _context_for(self, sel: _Selection) -> object:
        key = (sel.rsa, sel.ecdsa)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._new_context([i for i in key if i is not None])
            self._contexts[key] = ctx
        return ctx

    def _new_context(self, cert_indexes: list[int]) -> object:
        raw = lib.SSL_CTX_new(lib.TLS_server_method())
        if raw == ffi.NULL:
            raise OpenSSLError("SSL_CTX_new", drain_errors())
        ctx = ffi.gc(raw, lib.SSL_CTX_free)
        self._configure(ctx)
        for i in cert_indexes:
            self._load_certificate(ctx, self.certificates[i])
        return ctx

    def _configure(self, ctx: object) -> None:
        p = self.policy
        lib.SSL_CTX_set_options(ctx, _OPTIONS)
        lib.SSL_CTX_set_mode(ctx, _MODES)
        check(lib.SSL_CTX_set_min_proto_version(ctx, _VERSION_CODES[p.min_version]), "set min protocol")
        check(lib.SSL_CTX_set_max_proto_version(ctx, _VERSION_CODES[p.max_version]), "set max protocol")
        if p.ciphers:
            check(lib.SSL_CTX_set_cipher_list(ctx, p.cipher_string.encode()), f"cipher list of {p.name}")
        else:  # TLS 1.3 only: keep the security level explicit all the same
            check(lib.SSL_CTX_set_cipher_list(ctx, f"DEFAULT:@SECLEVEL={p.security_level}".encode()), "cipher list")
        if p.tls13_ciphers:
            check(lib.SSL_CTX_set_ciphersuites(ctx, p.tls13_cipher_string.encode()), f"TLS 1.3 ciphers of {p.name}")
        check(lib.SSL_CTX_set1_groups_list(ctx, GROUPS.encode()), "key exchange groups")
        lib.SSL_CTX_set_session_cache_mode(ctx, lib.SSL_SESS_CACHE_SERVER)
        lib.SSL_CTX_sess_set_cache_size(ctx, self.settings.session_cache_size)
        check(lib.SSL_CTX_set_session_id_context(ctx, SESSION_ID_CONTEXT, len(SESSION_ID_CONTEXT)), "session id context")
        lib.SSL_CTX_set_timeout(ctx, self.settings.ticket_lifetime_seconds)
        check(lib.alb_ctx_set_ticket_ring(ctx, self.tickets.c), "session ticket callback")
        lib.alb_ctx_set_protocols(ctx, self._alpn, self._npn)
        lib.SSL_CTX_set_tlsext_servername_callback(ctx, lib.alb_py_servername_cb)
        lib.SSL_CTX_set_tlsext_servername_arg(ctx, self._handle)
        lib.SSL_CTX_set_tlsext_status_cb(ctx, lib.alb_py_status_cb)
        lib.SSL_CTX_set_tlsext_status_arg(ctx, self._handle)
        if self.key_log:
            lib.alb_ctx_enable_keylog(ctx)

    def _load_certificate(self, ctx: object, cert: LoadedCertificate) -> None:
        spec = cert.spec
        lib.ERR_clear_error()
        if lib.SSL_CTX_use_certificate_chain_file(ctx, os.fsencode(spec.certificate)) <= 0:
            raise ConfigError(spec.certificate, f"OpenSSL refused the certificate: {_reasons()}")
        if lib.SSL_CTX_use_PrivateKey_file(ctx, os.fsencode(spec.private_key), lib.SSL_FILETYPE_PEM) <= 0:
            raise ConfigError(spec.private_key, f"OpenSSL refused the private key: {_reasons()}")
        if lib.SSL_CTX_check_private_key(ctx) <= 0:
            raise ConfigError(spec.private_key, f"private key does not match {spec.certificate}: {_reasons()}")
        self.certificate_files[int(ffi.cast("uintptr_t", lib.SSL_CTX_get0_certificate(ctx)))] = spec.certificate
        if spec.ocsp_staple:
            staple = self._staple_by_spec.get(spec)
            if staple is None:
                staple = self._staple_by_spec[spec] = OcspStaple(spec.ocsp_staple, cert.leaf)
            x509 = lib.SSL_CTX_get0_certificate(ctx)
            self.staples[int(ffi.cast("uintptr_t", x509))] = staple

    # -- per handshake ------------------------------------------------------------------------

    def select(self, server_name: bytes) -> object:
        """The context for an SNI name (cached; unknown names get the default)."""
        ctx = self._sni_cache.get(server_name)
        if ctx is not None:
            return ctx
        host = server_name.decode("ascii", "replace").lower().rstrip(".")
        exact = [i for i, c in enumerate(self.certificates) if host in c.names]
        matching = exact or [
            i for i, c in enumerate(self.certificates) if any(name_matches(n, host) for n in c.names if n[:2] == "*.")
        ]
        ctx = self._context_for(self._best(matching)) if matching else self.default_ctx
        if len(self._sni_cache) >= _SNI_CACHE_LIMIT:
            self._sni_cache.clear()
        self._sni_cache[server_name] = ctx
        return ctx

    def staple_for(self, x509: object) -> bytes | None:
        staple = self.staples.get(int(ffi.cast("uintptr_t", x509)))
        return staple.current() if staple is not None else None

    def refresh(self, now: float) -> None:
        """Periodic, off the handshake path: reload ticket keys and OCSP staples that changed."""
        self.tickets.refresh(now)
        for staple in self._staple_by_spec.values():
            staple.refresh()


def _reasons() -> str:
    return "; ".join(r.text for r in drain_errors()) or "unknown reason"


def _log_callback_error(what: str):  # type: ignore[no-untyped-def]
    def onerror(exc_type, exc_value, tb):  # type: ignore[no-untyped-def]
        log.error("%s callback failed: %r", what, exc_value, exc_info=(exc_type, exc_value, tb))
        return None  # cffi then returns the error= value

    return onerror


@ffi.def_extern(error=lib.SSL_TLSEXT_ERR_OK, onerror=_log_callback_error("SNI"))
def alb_py_servername_cb(ssl, alert, arg):  # type: ignore[no-untyped-def]
    """Choose the certificate context by SNI name; errors fall back to the default certificate."""
    name = lib.SSL_get_servername(ssl, lib.TLSEXT_NAMETYPE_host_name)
    if name != ffi.NULL:
        ctx = ffi.from_handle(arg).select(ffi.string(name))
        if ctx != lib.SSL_get_SSL_CTX(ssl):
            lib.SSL_set_SSL_CTX(ssl, ctx)
    return lib.SSL_TLSEXT_ERR_OK


@ffi.def_extern(error=lib.SSL_TLSEXT_ERR_NOACK, onerror=_log_callback_error("OCSP status"))
def alb_py_status_cb(ssl, arg):  # type: ignore[no-untyped-def]
    """Staple the chosen certificate's fresh OCSP response, if it has one."""
    der = ffi.from_handle(arg).staple_for(lib.SSL_get_certificate(ssl))
    if not der:
        return lib.SSL_TLSEXT_ERR_NOACK
    buf = lib.alb_malloc(len(der))
    if buf == ffi.NULL:
        return lib.SSL_TLSEXT_ERR_NOACK
    ffi.memmove(buf, der, len(der))
    if lib.SSL_set_tlsext_status_ocsp_resp(ssl, ffi.cast("unsigned char *", buf), len(der)) <= 0:
        drain_errors()
        return lib.SSL_TLSEXT_ERR_NOACK
    return lib.SSL_TLSEXT_ERR_OK


def open_key_log(path: str) -> None:
    """Start writing NSS key-log lines for every connection of this process (loudly)."""
    if not lib.alb_keylog_open(os.fsencode(path)):
        raise ConfigError(path, "cannot open TLS key log file for appending")
    log.warning(
        "TLS KEY LOGGING IS ON: session secrets are written to %s; anyone who can read it can "
        "decrypt captured traffic. Use it for diagnostics only.", path
    )

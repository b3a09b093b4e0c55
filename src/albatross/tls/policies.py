"""ALB's predefined security policies: protocol versions and ciphers in ALB's priority order.

ALB offers no custom policies, only named ones (``ELBSecurityPolicy-*``). Each policy is a
protocol range plus a subset of ALB's cipher table, and the server's order wins (the first
server cipher the client also offers). The order below is the order of ALB's published
table, which is its priority order.

OpenSSL 3 refuses TLS 1.0/1.1 and SHA-1 at its default security level, so the policies that
admit TLS 1.0 or 1.1 run at ``@SECLEVEL=0`` (as ALB really accepts such clients); every
other policy runs at ``@SECLEVEL=2`` whatever the system's openssl.cnf says.
"""

from __future__ import annotations

from dataclasses import dataclass

from albatross.errors import ConfigError

TLS1_0, TLS1_1, TLS1_2, TLS1_3 = "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
VERSIONS = (TLS1_0, TLS1_1, TLS1_2, TLS1_3)

# Cipher groups of ALB's table (OpenSSL names).
T13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
EGCM = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
)
ECBC2 = (
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
)
ECBC1 = ("ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES256-SHA")
RSA2 = ("AES128-GCM-SHA256", "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256")
RSA1 = ("AES128-SHA", "AES256-SHA")
DES3 = ("DES-CBC3-SHA",)

# ALB's whole table in priority order; a policy's TLS <= 1.2 list is this order, filtered.
PRIORITY = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
    "DES-CBC3-SHA",
)

# Key-exchange groups, strongest-and-fastest first. ALB does not publish its list; these are
# the groups every current client offers.
GROUPS = "X25519:P-256:P-384"

DEFAULT_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """A named policy: protocol range and ciphers, ready for OpenSSL."""

    name: str
    min_version: str
    max_version: str
    ciphers: tuple[str, ...]  # TLS <= 1.2, priority order
    tls13_ciphers: tuple[str, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        return VERSIONS[VERSIONS.index(self.min_version) : VERSIONS.index(self.max_version) + 1]

    @property
    def security_level(self) -> int:
        return 0 if self.min_version in (TLS1_0, TLS1_1) else 2

    @property
    def cipher_string(self) -> str:
        """The OpenSSL cipher string for TLS <= 1.2, with the policy's security level."""
        return ":".join((*self.ciphers, f"@SECLEVEL={self.security_level}"))

    @property
    def tls13_cipher_string(self) -> str:
        return ":".join(self.tls13_ciphers)


def _policy(name: str, versions: tuple[str, str], *groups: tuple[str, ...]) -> SecurityPolicy:
    wanted = {c for group in groups for c in group}
    ciphers = tuple(c for c in PRIORITY if c in wanted)
    tls13 = T13 if T13 in groups else ()
    if versions[1] == TLS1_3 and not tls13:
        raise AssertionError(f"{name}: TLS 1.3 needs TLS 1.3 ciphers")
    return SecurityPolicy(f"ELBSecurityPolicy-{name}", versions[0], versions[1], ciphers, tls13)


_EXT2 = (T13, EGCM, ECBC2, ECBC1, RSA2, RSA1)
_LEGACY = (EGCM, ECBC2, ECBC1, RSA2, RSA1)

POLICIES: dict[str, SecurityPolicy] = {
    p.name: p
    for p in (
        _policy("TLS13-1-2-2021-06", (TLS1_2, TLS1_3), T13, EGCM, ECBC2),
        _policy("TLS13-1-2-Res-2021-06", (TLS1_2, TLS1_3), T13, EGCM),
        _policy("TLS13-1-2-Ext1-2021-06", (TLS1_2, TLS1_3), T13, EGCM, ECBC2, RSA2),
        _policy("TLS13-1-2-Ext2-2021-06", (TLS1_2, TLS1_3), *_EXT2),
        _policy("TLS13-1-1-2021-06", (TLS1_1, TLS1_3), *_EXT2),
        _policy("TLS13-1-0-2021-06", (TLS1_0, TLS1_3), *_EXT2),
        _policy("TLS13-1-3-2021-06", (TLS1_3, TLS1_3), T13),
        _policy("FS-1-2-Res-2020-10", (TLS1_2, TLS1_2), EGCM),
        _policy("FS-1-2-Res-2019-08", (TLS1_2, TLS1_2), EGCM, ECBC2),
        _policy("FS-1-2-2019-08", (TLS1_2, TLS1_2), EGCM, ECBC2, ECBC1),
        _policy("FS-1-1-2019-08", (TLS1_1, TLS1_2), EGCM, ECBC2, ECBC1),
        _policy("FS-2018-06", (TLS1_0, TLS1_2), EGCM, ECBC2, ECBC1),
        _policy("TLS-1-2-Ext-2018-06", (TLS1_2, TLS1_2), *_LEGACY),
        _policy("TLS-1-2-2017-01", (TLS1_2, TLS1_2), EGCM, ECBC2, RSA2),
        _policy("TLS-1-1-2017-01", (TLS1_1, TLS1_2), *_LEGACY),
        _policy("2016-08", (TLS1_0, TLS1_2), *_LEGACY),
        _policy("2015-05", (TLS1_0, TLS1_2), *_LEGACY),
        _policy("TLS-1-0-2015-04", (TLS1_0, TLS1_2), *_LEGACY, DES3),
    )
}


def get_policy(name: str) -> SecurityPolicy:
    """Look a policy up by ALB name; an unknown name is a configuration error with a hint."""
    try:
        return POLICIES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, POLICIES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError("ssl_policy", f"unknown security policy {name!r}{hint}") from None

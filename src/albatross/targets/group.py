"""Target-group policy: which targets may take a request, slow-start weights, sticky cookies.

ALB's behaviour (alb-reference.md §3.2–3.6):

* **Fail open**: when healthy targets drop below
  ``target_group_health.unhealthy_state_routing.minimum_healthy_targets.count`` (default 1) or
  ``.percentage`` (default off), requests go to *all* registered targets by the normal algorithm.
  Draining and unused targets never take new requests.
* **Slow start** (``slow_start.duration_seconds`` 30–900, 0 = off): a target that becomes healthy
  ramps its share linearly, but only if another healthy target not itself in slow start exists;
  turning unhealthy or deregistering ends the ramp (re-entered on recovery); targets registered
  together into an empty group skip it.
* **Stickiness** ``lb_cookie``: ``AWSALB`` plus ``AWSALBCORS`` (same value, ``SameSite=None;
  Secure``), a 7-day ``Expires`` refreshed on every response, an opaque value whose binding goes
  stale after ``stickiness.lb_cookie.duration_seconds`` (default 86400). ``app_cookie``: ALB's own
  ``AWSALBAPP-0``..``-3`` (a value above 4 KB is split into up to four shards). An undecodable
  cookie, or one naming a deregistered/unhealthy target, means: choose again and re-issue.

Our decisions ([?] points):

* Fail-open candidates are the ``initial``, ``healthy``, ``unhealthy`` and ``unavailable``
  targets: a group whose targets are all still in initial checks routes to them rather than
  answer 503. :class:`Candidates` says whether fail-open was used (``UnhealthyRoutingRequestCount``).
* "Another healthy target" for slow start means one healthy since before this target was
  registered (or, on recovery, before it turned healthy again), so that targets registered
  together skip slow start whichever passes its first check first.
* The slow-start ramp is linear from :data:`SLOW_START_INITIAL_WEIGHT` (not 0, so a fresh target
  gets a trickle at once) to 1 over the duration.
* Cookie values are authenticated, not encrypted: ``base64url(version | expiry ms | id | [app
  value] | HMAC-SHA256)``. Clients cannot forge or extend a binding, but can read the target id,
  so ids should be opaque (an index or a hash, not an address). Keys are per process
  (:func:`new_sticky_key`); pass ``previous_keys`` to accept cookies across a key rotation.
  ``now`` for cookies must be wall-clock time (``Expires`` is an HTTP date).
* ``AWSALBAPP-n`` shards hold at most :data:`APP_SHARD_CHARS` characters; unused shard names are
  sent with the value ``_remove_`` (what ALB is seen sending; unconfirmed) and ignored on decode.
* A sticky target is honoured if it is among the candidates and routable — or any candidate
  while the group fails open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TypeVar

from albatross.targets.health import TargetHealth

SLOW_START_INITIAL_WEIGHT = 0.05
ERROR_RATE_ALPHA = 0.02  # weight of one response in Member.errors (about the last 50 requests)

LB_COOKIE = "AWSALB"
LB_CORS_COOKIE = "AWSALBCORS"
TG_COOKIE = "AWSALBTG"  # target-group stickiness of weighted forward actions (and AWSALBTGCORS)
APP_COOKIE_PREFIX = "AWSALBAPP-"
APP_COOKIE_SHARDS = 4
APP_SHARD_CHARS = 4000
APP_SHARD_UNUSED = "_remove_"
RESERVED_COOKIE_PREFIXES = ("AWSALB", "AWSALBAPP", "AWSALBTG")
COOKIE_EXPIRES_SECONDS = 7 * 86400
DEFAULT_STICKINESS_SECONDS = 86400
MAX_STICKINESS_SECONDS = 604800

_VERSION = 1
_HEAD = struct.Struct(">BQH")  # version, expiry in ms, length of the target id
_MAC_LEN = 32


# -- candidates and fail-open ---------------------------------------------------------------

class Candidates(list):  # type: ignore[type-arg]
    """The targets a request may go to; ``fail_open`` tells whether unhealthy ones were added."""

    fail_open: bool = False


H = TypeVar("H")


def select_candidates(targets: Iterable[H], now: float, *, min_healthy_count: int = 1,
                      min_healthy_percent: float = 0) -> Candidates:
    """The targets (objects with ``.health: TargetHealth``) that may take the next request.

    Routable targets normally; every registered non-draining target when fewer than
    ``min_healthy_count`` or ``min_healthy_percent`` % of them are routable (fail open).
    ``now`` completes nothing here (draining ends in ``TargetHealth.handle_timer``); it is taken
    so that the signature matches the other time-dependent policies.
    """
    registered = [t for t in targets if t.health.registered]  # type: ignore[attr-defined]
    routable = Candidates(t for t in registered if t.health.routable)  # type: ignore[attr-defined]
    short = len(routable) < min_healthy_count or (
        min_healthy_percent > 0 and len(routable) * 100 < min_healthy_percent * len(registered))
    if not short or not registered:
        return routable
    every = Candidates(registered)
    every.fail_open = True
    return every


# -- slow start -------------------------------------------------------------------------------

def slow_start_weight(since_healthy: float | None, duration: float, now: float) -> float:
    """The share multiplier of a target ramping since ``since_healthy``: linear from
    :data:`SLOW_START_INITIAL_WEIGHT` to 1 over ``duration`` seconds; 1 when not ramping."""
    if since_healthy is None or duration <= 0:
        return 1.0
    elapsed = now - since_healthy
    if elapsed >= duration:
        return 1.0
    progress = max(elapsed, 0.0) / duration
    return SLOW_START_INITIAL_WEIGHT + (1.0 - SLOW_START_INITIAL_WEIGHT) * progress


def in_slow_start(since: float | None, duration: float, now: float) -> bool:
    """Whether a ramp that began at ``since`` is still running at ``now``."""
    return since is not None and duration > 0 and now < since + duration


def enters_slow_start(peers: Iterable[Member], now: float, duration: float, *,
                      healthy_before: float = math.inf) -> bool:
    """ALB's entry rule: only if some *other* routable target, healthy since strictly before
    ``healthy_before``, is not itself ramping."""
    return duration > 0 and any(
        p.health.routable and p.health.healthy_since is not None and p.health.healthy_since < healthy_before
        and not in_slow_start(p.slow_start_from, duration, now) for p in peers)


@dataclass(eq=False, slots=True)
class Member:
    """One registered target as the policies see it (a balancer :class:`Candidate`).

    ``id`` is what sticky cookies carry. The caller counts ``outstanding`` and reports responses
    with :meth:`record_response`; after a health change it calls :meth:`refresh_slow_start`.
    """

    id: str
    health: TargetHealth
    slow_start_seconds: float = 0
    outstanding: int = 0
    errors: float = 0.0
    slow_start_from: float | None = None
    _ramp_seen: float | None = field(default=None, repr=False)

    def weight(self, now: float) -> float:
        """The slow-start share; the ramp ends when the target left healthy (``healthy_since``
        changed) or the duration is over."""
        if self.slow_start_from is None or self.health.healthy_since != self.slow_start_from:
            return 1.0
        return slow_start_weight(self.slow_start_from, self.slow_start_seconds, now)

    def refresh_slow_start(self, now: float, peers: Iterable[Member]) -> None:
        """Begin slow start if the target has just become healthy and ALB's rule allows it.

        A peer counts if it was already healthy when this target was registered (first healthy
        episode) or when this target recovered (later episodes): targets registered together
        into an empty group therefore all skip slow start, whatever order their checks pass in.
        """
        since = self.health.healthy_since
        if since is None or since == self._ramp_seen:
            return
        first = self._ramp_seen is None
        self._ramp_seen = since
        before = self.health.registered_at if first else since
        others = (p for p in peers if p is not self)
        ramps = enters_slow_start(others, now, self.slow_start_seconds, healthy_before=before)
        self.slow_start_from = since if ramps else None

    def record_response(self, ok: bool) -> None:
        """Fold one response into ``errors`` (5XX or connection/TLS error → not ok)."""
        self.errors += ERROR_RATE_ALPHA * ((0.0 if ok else 1.0) - self.errors)


def sticky_member(candidates: Candidates | Sequence[Member], target_id: str | None) -> Member | None:
    """The candidate a decoded sticky cookie names, if stickiness may be honoured."""
    if target_id is None:
        return None
    fail_open = getattr(candidates, "fail_open", False)
    for m in candidates:
        if m.id == target_id:
            return m if (fail_open or m.health.routable) else None
    return None


# -- sticky cookie codec ---------------------------------------------------------------------

def new_sticky_key() -> bytes:
    """A fresh 256-bit process key for sticky cookies."""
    return os.urandom(32)


def _seal(payload: bytes, key: bytes) -> str:
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


def _open(value: str, now: float, keys: Sequence[bytes]) -> tuple[str, bytes] | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _HEAD.size + _MAC_LEN:
        return None
    payload, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
    if not any(hmac.compare_digest(mac, hmac.new(k, payload, hashlib.sha256).digest()) for k in keys):
        return None
    version, expiry_ms, id_len = _HEAD.unpack_from(payload)
    if version != _VERSION or now * 1000 >= expiry_ms or _HEAD.size + id_len > len(payload):
        return None
    try:
        target_id = payload[_HEAD.size:_HEAD.size + id_len].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return target_id, payload[_HEAD.size + id_len:]


def _payload(target_id: str, now: float, duration: float, extra: bytes = b"") -> bytes:
    if not 0 < duration <= MAX_STICKINESS_SECONDS:
        raise ValueError(f"stickiness duration must be 1-{MAX_STICKINESS_SECONDS} s, got {duration!r}")
    tid = target_id.encode("utf-8")
    return _HEAD.pack(_VERSION, int((now + duration) * 1000), len(tid)) + tid + extra


def encode_sticky(target_id: str, now: float, duration: float, key: bytes) -> str:
    """The ``AWSALB``/``AWSALBCORS`` value binding a client to ``target_id`` until now + duration."""
    return _seal(_payload(target_id, now, duration), key)


def decode_sticky(value: str, now: float, key: bytes, *, previous_keys: Sequence[bytes] = ()) -> str | None:
    """The target id of a valid, unexpired ``AWSALB`` value; ``None`` if forged, expired or garbled."""
    opened = _open(value, now, (key, *previous_keys))
    return None if opened is None else opened[0]


def lb_cookie_value(cookies: Mapping[str, str], name: str = LB_COOKIE) -> str | None:
    """The sticky value a request carries: ``AWSALB``, else ``AWSALBCORS`` (``name`` and
    ``name + "CORS"``: ``AWSALBTG`` for target-group stickiness)."""
    return cookies.get(name) or cookies.get(name + "CORS")


def _expires(now: float) -> str:
    return formatdate(now + COOKIE_EXPIRES_SECONDS, usegmt=True)


def lb_cookie_headers(value: str, now: float, name: str = LB_COOKIE) -> tuple[str, str]:
    """The two ``Set-Cookie`` values ALB sends: ``AWSALB`` and ``AWSALBCORS`` (7-day Expires);
    with ``name="AWSALBTG"``, the target-group stickiness pair."""
    expires = _expires(now)
    return (f"{name}={value}; Expires={expires}; Path=/",
            f"{name}CORS={value}; Expires={expires}; Path=/; SameSite=None; Secure")


_CHROMIUM = re.compile(r"Chrom(?:e|ium)/(\d+)")


def wants_same_site_none(user_agent: str) -> bool:
    """ALB adds ``SameSite=None; Secure`` to ``AWSALBAPP-n`` for Chromium 80 and later only."""
    m = _CHROMIUM.search(user_agent)
    return m is not None and int(m.group(1)) >= 80


def sets_cookie(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bool:
    """Whether response ``headers`` set the cookie ``name`` (a ``Set-Cookie: name=...`` field)."""
    prefix = name + b"="
    return any(n.lower() == b"set-cookie" and v.lstrip().startswith(prefix) for n, v in headers)


# -- application-based stickiness ------------------------------------------------------------

def validate_app_cookie_name(name: str) -> str:
    """Check ``stickiness.app_cookie.cookie_name``: a cookie token not using ALB's reserved prefixes."""
    if not name or any(ch in '()<>@,;:\\"/[]?={} \t' or not (32 < ord(ch) < 127) for ch in name):
        raise ValueError(f"invalid cookie name {name!r}")
    if name.startswith(RESERVED_COOKIE_PREFIXES):
        raise ValueError(f"cookie name {name!r} must not start with AWSALB, AWSALBAPP or AWSALBTG")
    return name


def app_cookie_names() -> list[str]:
    """``AWSALBAPP-0`` .. ``AWSALBAPP-3``."""
    return [f"{APP_COOKIE_PREFIX}{n}" for n in range(APP_COOKIE_SHARDS)]


def encode_app_sticky(target_id: str, now: float, duration: float, key: bytes,
                      app_value: str = "") -> list[tuple[str, str]]:
    """``(name, value)`` for all four ``AWSALBAPP-n`` cookies, binding the application cookie
    value ``app_value`` to ``target_id``; shards past the value's end carry ``_remove_``.
    ``ValueError`` when the sealed value needs more than four shards."""
    sealed = _seal(_payload(target_id, now, duration, app_value.encode("utf-8")), key)
    shards = [sealed[i:i + APP_SHARD_CHARS] for i in range(0, len(sealed), APP_SHARD_CHARS)]
    if len(shards) > APP_COOKIE_SHARDS:
        raise ValueError(f"application cookie too large for {APP_COOKIE_SHARDS} shards")
    shards += [APP_SHARD_UNUSED] * (APP_COOKIE_SHARDS - len(shards))
    return list(zip(app_cookie_names(), shards))


def decode_app_sticky(cookies: Mapping[str, str], now: float, key: bytes, *, app_value: str | None = None,
                      previous_keys: Sequence[bytes] = ()) -> str | None:
    """The target id bound by a request's ``AWSALBAPP-n`` cookies, or ``None``. With
    ``app_value`` given, the binding must be for that application cookie value."""
    parts = []
    for name in app_cookie_names():
        shard = cookies.get(name)
        if shard is None or shard == APP_SHARD_UNUSED:
            break
        parts.append(shard)
    if not parts:
        return None
    opened = _open("".join(parts), now, (key, *previous_keys))
    if opened is None:
        return None
    target_id, bound = opened
    if app_value is not None and bound != app_value.encode("utf-8"):
        return None
    return target_id


def app_cookie_headers(pairs: Sequence[tuple[str, str]], now: float, *, same_site_none: bool = False) -> list[str]:
    """``Set-Cookie`` values for :func:`encode_app_sticky`'s pairs (7-day Expires, Path=/).

    ALB adds ``SameSite=None; Secure`` only for Chromium >= 80 user agents: the caller, which sees
    the User-Agent, says so with ``same_site_none``.
    """
    expires = _expires(now)
    tail = "; SameSite=None; Secure" if same_site_none else ""
    return [f"{name}={value}; Expires={expires}; Path=/{tail}" for name, value in pairs]

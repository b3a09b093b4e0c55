"""Listener rules: ALB's conditions compiled once, evaluated per request; redirect URLs.

ALB's rules (alb-reference §2.1–2.3):

* A rule is a priority (1–50000, unique per listener), conditions and an action. Rules are tried
  lowest priority first; the first rule whose conditions **all** match wins; the listener's
  default rule (no conditions) comes last and is logged as priority ``0``.
* Inside one condition the listed values are OR'ed; separate conditions are AND'ed.
* ``host-header``: case-insensitive, ``*`` (0+ characters) and ``?`` (exactly one), compared with
  the first Host header (or ``:authority``) *without its port*; ``*.example.com`` does not match
  ``example.com`` (the ``.`` is literal). ``path-pattern``: case-sensitive, same wildcards, the path
  only, as received (not decoded, not normalised). ``http-header``: name case-insensitive (never
  ``Host``), values case-insensitive with wildcards, every occurrence of a repeated header tried.
  ``http-request-method``: exact and case-sensitive. ``query-string``: ``{key?, value}`` pairs,
  case-insensitive, wildcards, ``\\*`` and ``\\?`` for literal ``*``/``?``; a pair without key
  matches the value of any parameter. ``source-ip``: IPv4/IPv6 CIDRs against the TCP peer.
* Matching only considers visible ASCII: a request value holding a control character
  (0x00–0x1F, 0x7F) never matches a pattern, not even ``*``.

Our decisions on points ALB does not document (**[?]** in the reference):

* Bytes ≥ 0x80 count as "not visible ASCII" too: such a value never matches (so ``?`` always
  means one ASCII character, never a fragment of a UTF-8 sequence).
* Query strings: split on ``&``, each parameter on its first ``=``; a parameter without ``=``
  is a key with an empty value (``?debug`` matches ``{key: debug, value: "*"}``, not
  ``{value: debug}``); empty parameters are skipped. Keys and values are **percent-decoded**
  before comparison (the docs say "any character can be percentage encoded", so ``%41`` must
  equal ``A``); ``+`` is **not** a space (RFC 3986, which the docs cite, gives ``+`` no meaning).
  Condition values are percent-decoded the same way (around their wildcards), so ``a%20b`` and
  ``a b`` in a condition are the same; ``%2A`` in a condition is a literal ``*``. A value that
  decodes to a control character or non-ASCII byte never matches.
* Header values are compared with surrounding spaces/tabs (OWS) removed.
* ``path-pattern`` accepts ``&`` and its documented spelling ``&amp;`` (``;`` is otherwise
  refused, so ``&amp;`` can only mean ``&``).
* Host patterns need at least one ``.`` and at least one letter (letters only) after the last
  ``.``; the request host is compared as sent (a trailing ``.`` is not removed).
* ``source-ip``: a CIDR must carry its prefix length and no host bits (``10.0.0.1/8`` is refused);
  an IPv4-mapped IPv6 peer (``::ffff:10.1.2.3``, dual-stack sockets) is compared as IPv4.
* ``regex_values`` (ALB 2025) are refused rather than silently ignored.
* Redirects: ``#{port}`` is the listener port; ``#{protocol}`` is ``http``/``https`` (lower
  case) wherever it appears; ``#{host}`` is the Host header without its port, as sent. A URL
  over 8 KiB, a ``#{host}`` with no Host header to take it from, or a URL that would carry a
  control character, space or non-ASCII byte gives ``None`` (the caller answers 500).
  Status codes 307/308 are accepted beyond ALB (which allows only 301/302).
* Wildcards are matched by splitting the pattern at ``*`` and finding the pieces leftmost-first
  (linear work per piece), never by a backtracking regex over the whole pattern.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable
from urllib.parse import unquote_to_bytes

MAX_PRIORITY = 50000
MAX_VALUES_PER_CONDITION = 5
MAX_VALUES_PER_RULE = 5
MAX_WILDCARDS_PER_RULE = 5
MAX_REDIRECT_URL = 8192
SINGLE_FIELDS = ("host-header", "http-request-method", "path-pattern", "source-ip")
_CONFIG_KEYS = {"host-header": "host_header_config", "path-pattern": "path_pattern_config",
                "http-header": "http_header_config", "http-request-method": "http_request_method_config",
                "query-string": "query_string_config", "source-ip": "source_ip_config"}


class RuleError(ValueError):
    """A condition or action value ALB would refuse; the message is the reason."""


@dataclass(frozen=True, slots=True)
class RequestView:
    """What rules look at, built once per request by the caller."""

    method: bytes  # as received, e.g. b"GET"
    path: bytes  # path only (before '?'), as received
    query: bytes  # after the first '?' up to '#' (b"" when none)
    host: bytes | None  # first Host header or :authority, may carry ':port'
    headers: Iterable[tuple[bytes, bytes]]  # names in any case; iterated only by http-header conditions
    source_ip: str  # TCP peer address (not X-Forwarded-For)
    scheme: str  # "http" | "https" (listener protocol)
    port: int  # listener port


# --------------------------------------------------------------------------- wildcard patterns

_INVISIBLE = re.compile(rb"[^\x20-\x7e]").search  # control characters and non-ASCII bytes
_ONE = object()  # token: '?'
_ANY = object()  # token: '*'
Matcher = Callable[[bytes], bool]


def _strip_port(host: bytes) -> bytes:
    """``host[:port]`` or ``[v6][:port]`` without the port."""
    if host[:1] == b"[":
        end = host.find(b"]")
        return host[: end + 1] if end >= 0 else host
    colon = host.rfind(b":")
    return host[:colon] if colon >= 0 else host


_SPLIT = re.compile(r"([*?])").split
_SPLIT_ESCAPED = re.compile(r"(\\[*?]|[*?])").split  # '\*' and '\?' are literals


def _tokens(pattern: str, *, escapes: bool = False, decode: bool = False, fold: bool = False) -> list:
    """A pattern as literal byte runs and ``_ONE``/``_ANY`` tokens ('**' is one '*').

    ``escapes``: ``\\*``/``\\?`` are literals; ``decode``: literal runs are percent-decoded;
    ``fold``: lower-cased (for case-insensitive fields, whose request values are lower-cased too).
    """
    out: list = []
    pieces = (_SPLIT_ESCAPED if escapes else _SPLIT)(pattern)
    for i in range(0, len(pieces), 2):  # text at even places, wildcards (or escapes) between
        if i and len(pieces[i - 1]) == 1:
            if pieces[i - 1] == "?":
                out.append(_ONE)
            elif not out or out[-1] is not _ANY:
                out.append(_ANY)
            text = pieces[i]
        else:
            text = (pieces[i - 1][-1] if i else "") + pieces[i]
        if text:
            lit = text.encode("ascii")
            lit = unquote_to_bytes(lit) if decode and b"%" in lit else lit
            out.append(lit.lower() if fold else lit)
    return out


def _compile_glob(tokens: list) -> bytes | Matcher:
    """A literal (to be looked up in a set) or a matcher function for a tokenised pattern."""
    segs: list[list] = [[]]
    for t in tokens:
        if t is _ANY:
            segs.append([])
        else:
            segs[-1].append(t)
    if all(p is not _ONE for s in segs for p in s):  # no '?': plain bytes operations
        lits = [b"".join(s) for s in segs]
        if len(lits) == 1:
            return lits[0]
        head, *mids, tail = lits
        mids = [m for m in mids if m]
        if not mids:  # 'pre*', '*suf', 'pre*suf', '*'
            need = len(head) + len(tail)
            return lambda v: len(v) >= need and v.startswith(head) and v.endswith(tail)
        if len(mids) == 1 and not head and not tail:  # '*mid*'
            return lambda v, mid=mids[0]: mid in v
    # General case: each run between two '*' is a fixed-length regex ('?' is '.'), found
    # leftmost-first in turn; no backtracking across '*'.
    rxs = [(re.compile(b"".join(b"." if p is _ONE else re.escape(p) for p in s), re.DOTALL),
            sum(1 if p is _ONE else len(p) for p in s)) for s in segs]
    if len(rxs) == 1:
        return lambda v, fm=rxs[0][0].fullmatch: fm(v) is not None
    (head, hl), *mids, (tail, tl) = rxs
    steps = [rx.search for rx, n in mids if n]
    minlen = sum(n for _, n in rxs)

    def match(v: bytes) -> bool:
        n = len(v)
        if n < minlen:
            return False
        end = n - tl
        if (hl and head.match(v) is None) or (tl and tail.match(v, end) is None):
            return False
        pos = hl
        for search in steps:
            m = search(v, pos, end)
            if m is None:
                return False
            pos = m.end()
        return True

    return match


class _Patterns:
    """Several wildcard patterns OR'ed: a set of literals plus matcher functions."""

    __slots__ = ("literals", "funcs")

    def __init__(self, token_lists: list[list]) -> None:
        lits, funcs = set(), []
        for toks in token_lists:
            m = _compile_glob(toks)
            if isinstance(m, bytes):
                lits.add(m)
            else:
                funcs.append(m)
        self.literals = frozenset(lits)
        self.funcs = tuple(funcs)

    def __call__(self, value: bytes) -> bool:
        """``value`` case-folded when the patterns are; not visible ASCII never matches."""
        if value in self.literals:  # literals are visible ASCII: equality is enough
            return True
        for f in self.funcs:
            if f(value):  # checked only now: most values fail the pattern first
                return not _INVISIBLE(value)
        return False


def _wildcards(pattern: str, escapes: bool = False) -> int:
    return sum(1 for t in _tokens(pattern, escapes=escapes) if t is _ANY or t is _ONE)


# --------------------------------------------------------------------------- conditions

_HOST_CHARS = re.compile(r"[A-Za-z0-9.*?-]+")
_HOST_TLD = re.compile(r"\.[A-Za-z]+")
_PATH_CHARS = re.compile(r"""[A-Za-z0-9_\-.$/~"'@:+&*?]+""")
_METHOD = re.compile(r"[A-Z_-]+")
_TOKEN = re.compile(r"[!#$%&'+.^_`|~0-9A-Za-z-]+")  # RFC 7230 tchar without '*'
_VISIBLE = re.compile(r"[\x20-\x7e]+")


class Condition:
    """One compiled rule condition; :meth:`matches` is the per-request test."""

    __slots__ = ("field", "value_count", "wildcard_count")

    def matches(self, view: RequestView) -> bool:  # pragma: no cover - abstract
        """True when the request satisfies this condition."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.field} values={self.value_count}>"


class _HostHeader(Condition):
    __slots__ = ("match",)

    def matches(self, view: RequestView) -> bool:
        host = view.host
        if not host:
            return False
        return self.match(_strip_port(host).lower() if b":" in host else host.lower())


class _PathPattern(Condition):
    __slots__ = ("match",)

    def matches(self, view: RequestView) -> bool:
        return self.match(view.path)


class _HttpHeader(Condition):
    __slots__ = ("name", "match")

    def matches(self, view: RequestView) -> bool:
        name, n = self.name, len(self.name)
        for k, v in view.headers:
            if len(k) == n and k.lower() == name:
                if self.match(v.strip(b" \t").lower()):
                    return True
        return False


class _Method(Condition):
    __slots__ = ("methods",)

    def matches(self, view: RequestView) -> bool:
        return view.method in self.methods


# One-entry cache: the query-string conditions of one request share one parse. The pair is
# swapped as one tuple, so concurrent threads at worst parse again, never see a mismatch.
_last_query: tuple[bytes, tuple] = (b"", ())


def _query_params(query: bytes) -> tuple[tuple[bytes | None, bytes | None], ...]:
    """``(key, value)`` pairs decoded and lower-cased; ``None`` for a part that can never match."""
    global _last_query
    last = _last_query
    if last[0] == query:
        return last[1]
    out = []
    for part in query.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        if b"%" in key:
            key = unquote_to_bytes(key)
        if b"%" in value:
            value = unquote_to_bytes(value)
        out.append((None if _INVISIBLE(key) else key.lower(), None if _INVISIBLE(value) else value.lower()))
    params = tuple(out)
    _last_query = (query, params)
    return params


class _QueryString(Condition):
    __slots__ = ("pairs",)

    def matches(self, view: RequestView) -> bool:
        if not view.query:
            return False
        params = _query_params(view.query)
        for key_match, value_match in self.pairs:
            for key, value in params:
                if value is not None and value_match(value) and (
                        key_match is None or (key is not None and key_match(key))):
                    return True
        return False


@lru_cache(maxsize=4096)
def _peer(address: str) -> tuple[int, int] | None:
    """``(version, integer)`` of a peer address; IPv4-mapped IPv6 becomes IPv4."""
    address = address.strip("[]").partition("%")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version, int(ip)


class _SourceIp(Condition):
    __slots__ = ("networks",)

    def matches(self, view: RequestView) -> bool:
        peer = _peer(view.source_ip)
        if peer is None:
            return False
        version, ip = peer
        for v, net, mask in self.networks:
            if v == version and ip & mask == net:
                return True
        return False


def _raw_values(spec: dict) -> object:
    """The values of a condition: ``<field>_config.values``, or legacy ``values`` (host/path)."""
    config = spec.get(_CONFIG_KEYS.get(spec.get("field"), ""))
    values = config.get("values") if isinstance(config, dict) else None
    if values is None and spec.get("field") in ("host-header", "path-pattern"):
        values = spec.get("values")
    return values


def _values(spec: dict, field: str) -> list:
    values = _raw_values(spec)
    if values is None:
        raise RuleError(f"{field} condition needs {_CONFIG_KEYS[field]}.values")
    if not isinstance(values, (list, tuple)) or not values:
        raise RuleError(f"{field} condition needs at least one value")
    return list(values)


def _check_text(value: object, what: str, limit: int = 128) -> str:
    if not isinstance(value, str):
        raise RuleError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise RuleError(f"{what} must not be empty")
    if len(value) > limit:
        raise RuleError(f"{what} {value[:40]!r}… is longer than {limit} characters")
    return value


def _host_tokens(value: object) -> list:
    v = _check_text(value, "host-header value")
    if not _HOST_CHARS.fullmatch(v):
        raise RuleError(f"host-header value {v!r}: only A-Z a-z 0-9 - . * ? are allowed")
    if "." not in v:
        raise RuleError(f"host-header value {v!r} must contain at least one '.'")
    if not _HOST_TLD.fullmatch(v[v.rindex("."):]):
        raise RuleError(f"host-header value {v!r}: only letters may follow the last '.'")
    return _tokens(v, fold=True)


def _path_tokens(value: object) -> list:
    v = _check_text(value, "path-pattern value")
    v = v.replace("&amp;", "&")
    if not _PATH_CHARS.fullmatch(v):
        raise RuleError(f"path-pattern value {v!r}: only A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ? are allowed")
    return _tokens(v)


def _visible(value: object, what: str) -> str:
    v = _check_text(value, what)
    if not _VISIBLE.fullmatch(v):
        raise RuleError(f"{what} {v!r} holds a control or non-ASCII character")
    return v


def compile_condition(spec: dict, *, max_values: int | None = MAX_VALUES_PER_CONDITION) -> Condition:
    """Compile one condition given as ALB API data (snake_case, as ``model_dump()`` gives).

    Raises :class:`RuleError` with ALB's reason for values ALB refuses. ``max_values`` caps the
    values of this one condition (``None``: no cap).
    """
    if not isinstance(spec, dict):
        raise RuleError("a condition must be a mapping")
    field = spec.get("field")
    if spec.get("regex_values"):
        raise RuleError(f"{field} condition: regex_values are not supported")
    cond: Condition
    if field == "host-header":
        values = _values(spec, field)
        cond = _HostHeader()
        cond.match = _Patterns([_host_tokens(v) for v in values])
        wild = sum(_wildcards(v) for v in values)
    elif field == "path-pattern":
        values = _values(spec, field)
        cond = _PathPattern()
        cond.match = _Patterns([_path_tokens(v) for v in values])
        wild = sum(_wildcards(v) for v in values)
    elif field == "http-header":
        config = spec.get("http_header_config") or {}
        name = _check_text(config.get("http_header_name"), "http-header name", 40)
        if "*" in name or "?" in name:
            raise RuleError(f"http-header name {name!r}: wildcards are not allowed in header names")
        if not _TOKEN.fullmatch(name):
            raise RuleError(f"http-header name {name!r} is not a valid header name (RFC 7230 token)")
        if name.lower() == "host":
            raise RuleError("http-header name cannot be Host: use a host-header condition")
        values = _values(spec, field)
        cond = _HttpHeader()
        cond.name = name.lower().encode("ascii")
        cond.match = _Patterns([_tokens(_visible(v, "http-header value"), fold=True) for v in values])
        wild = sum(_wildcards(v) for v in values)
    elif field == "http-request-method":
        values = _values(spec, field)
        for v in values:
            _check_text(v, "http-request-method value", 40)
            if not _METHOD.fullmatch(v):
                raise RuleError(f"http-request-method value {v!r}: only A-Z - _ are allowed (no wildcards)")
        cond = _Method()
        cond.methods = frozenset(v.encode("ascii") for v in values)
        wild = 0
    elif field == "query-string":
        values = _values(spec, field)
        pairs = []
        wild = 0
        for pair in values:
            if not isinstance(pair, dict):
                raise RuleError("query-string values are {key?, value} mappings")
            key = pair.get("key")
            value = _visible(pair.get("value"), "query-string value")
            key_match = None
            if key is not None:
                key_match = _Patterns([_tokens(_visible(key, "query-string key"), escapes=True, decode=True, fold=True)])
                wild += _wildcards(key, escapes=True)
            value_match = _Patterns([_tokens(value, escapes=True, decode=True, fold=True)])
            wild += _wildcards(value, escapes=True)
            pairs.append((key_match, value_match))
        cond = _QueryString()
        cond.pairs = tuple(pairs)
    elif field == "source-ip":
        values = _values(spec, field)
        nets = []
        for v in values:
            _check_text(v, "source-ip value", 64)
            if "/" not in v:
                raise RuleError(f"source-ip value {v!r} must be a CIDR block (address/prefix length)")
            try:
                net = ipaddress.ip_network(v.strip(), strict=True)
            except ValueError as exc:
                raise RuleError(f"source-ip value {v!r} is not a valid CIDR block: {exc}") from None
            if net == ipaddress.ip_network("255.255.255.255/32"):
                raise RuleError("source-ip value 255.255.255.255/32 is not allowed")
            nets.append((net.version, int(net.network_address), int(net.netmask)))
        cond = _SourceIp()
        cond.networks = tuple(nets)
        wild = 0
    else:
        raise RuleError(f"unknown condition field {field!r}")
    if max_values is not None and len(values) > max_values:
        raise RuleError(f"{field} condition has {len(values)} values; at most {max_values} are allowed")
    cond.field = field
    cond.value_count = len(values)
    cond.wildcard_count = wild
    return cond


def count_condition_values(specs: list[dict]) -> int:
    """Condition values of one rule in total, as ALB counts them against its quota of 5.

    (Every host/path/method/source-ip/header value and every query-string pair counts one.)
    """
    return sum(len(_raw_values(spec) or ()) for spec in specs)


def count_wildcards(specs: list[dict]) -> int:
    """``*`` and ``?`` wildcards of one rule in total (ALB's quota: 5); escaped ones don't count."""
    return sum(compile_condition(s, max_values=None).wildcard_count for s in specs)


def check_rule_conditions(specs: list[dict], *, enforce_quotas: bool = True) -> None:
    """Rule-level checks: one each of host/method/path/source-ip; ALB's per-rule quotas.

    ``enforce_quotas=False`` lifts the 5-values and 5-wildcards quotas (beyond ALB).
    """
    seen = set()
    for spec in specs:
        field = spec.get("field")
        if field in SINGLE_FIELDS:
            if field in seen:
                raise RuleError(f"a rule may have only one {field} condition")
            seen.add(field)
    if enforce_quotas:
        n = count_condition_values(specs)
        if n > MAX_VALUES_PER_RULE:
            raise RuleError(f"the rule has {n} condition values; at most {MAX_VALUES_PER_RULE} are allowed")
        w = count_wildcards(specs)
        if w > MAX_WILDCARDS_PER_RULE:
            raise RuleError(f"the rule has {w} wildcards; at most {MAX_WILDCARDS_PER_RULE} are allowed")


# --------------------------------------------------------------------------- rules and router

@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A listener rule ready to evaluate; ``action`` is opaque to the router."""

    priority: int
    conditions: tuple[Condition, ...]
    action: object


def compile_rule(priority: int, specs: list[dict], action: object, *, enforce_quotas: bool = True) -> CompiledRule:
    """Check and compile one rule's conditions (see :func:`check_rule_conditions`)."""
    check_rule_conditions(specs, enforce_quotas=enforce_quotas)
    limit = MAX_VALUES_PER_CONDITION if enforce_quotas else None
    return CompiledRule(priority, tuple(compile_condition(s, max_values=limit) for s in specs), action)


class Router:
    """First matching rule by ascending priority, else the default action (priority 0)."""

    __slots__ = ("rules", "default_action", "_table")

    def __init__(self, rules: list[CompiledRule], default_action: object) -> None:
        seen: set[int] = set()
        for rule in rules:
            p = rule.priority
            if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= MAX_PRIORITY:
                raise RuleError(f"rule priority {p!r} must be an integer from 1 to {MAX_PRIORITY}")
            if p in seen:
                raise RuleError(f"rule priority {p} is used twice; priorities must be unique")
            seen.add(p)
        self.rules = tuple(sorted(rules, key=lambda r: r.priority))
        self.default_action = default_action
        self._table = tuple((r.priority, tuple(c.matches for c in r.conditions), r.action) for r in self.rules)

    def route(self, view: RequestView) -> tuple[int, object]:
        """``(matched priority, action)``; priority ``0`` means the default rule."""
        for priority, tests, action in self._table:
            for test in tests:
                if not test(view):
                    break
            else:
                return priority, action
        return 0, self.default_action


# --------------------------------------------------------------------------- redirects

_KEYWORD = re.compile(r"#\{([^}]*)\}")
_SCOPES = {  # keyword -> parts where it may appear
    "protocol": ("protocol", "query"),
    "host": ("host", "path", "query"),
    "port": ("port", "path", "query"),
    "path": ("path", "query"),
    "query": ("query",),
}
_DEFAULTS = {"protocol": "#{protocol}", "port": "#{port}", "host": "#{host}", "path": "/#{path}", "query": "#{query}"}
_STATUS = {"HTTP_301": 301, "HTTP_302": 302, "HTTP_307": 307, "HTTP_308": 308}
_REDIRECT_HOST = re.compile(r"[A-Za-z0-9.-]*")
_URL_BAD = re.compile(rb"[^\x21-\x7e]").search


def _part(config: dict, name: str) -> str:
    value = config.get(name)
    if value is None:
        return _DEFAULTS[name]
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def validate_redirect(config: dict, listener_protocol: str | None = None, *, listener_port: int | None = None) -> None:
    """Refuse a redirect config ALB refuses (:class:`RuleError` with the reason).

    Checks keywords and their scopes, lengths, ``protocol``/``port`` forms, a leading ``/`` in
    ``path``, no leading ``?`` in ``query``, the status code, that at least one of protocol,
    port, host or path changes (loop) and, when ``listener_protocol`` is known, HTTPS→HTTP.
    """
    if not isinstance(config, dict):
        raise RuleError("redirect config must be a mapping")
    parts = {name: _part(config, name) for name in _DEFAULTS}
    for name, value in parts.items():
        if not isinstance(value, str):
            raise RuleError(f"redirect {name} must be a string")
        for kw in _KEYWORD.findall(value):
            if kw not in _SCOPES:
                raise RuleError(f"redirect {name}: unknown keyword #{{{kw}}}")
            if name not in _SCOPES[kw]:
                raise RuleError(f"redirect {name}: keyword #{{{kw}}} is not allowed here")
        if not _VISIBLE.fullmatch(value) and value:
            raise RuleError(f"redirect {name} holds a control or non-ASCII character")
    protocol, port, host, path, query = (parts[k] for k in ("protocol", "port", "host", "path", "query"))
    if protocol not in ("HTTP", "HTTPS", "#{protocol}"):
        raise RuleError(f"redirect protocol {protocol!r} must be HTTP, HTTPS or #{{protocol}}")
    if port != "#{port}" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise RuleError(f"redirect port {port!r} must be 1-65535 or #{{port}}")
    if not 1 <= len(host) <= 128:
        raise RuleError("redirect host must be 1 to 128 characters")
    if not _REDIRECT_HOST.fullmatch(_KEYWORD.sub("", host)):
        raise RuleError(f"redirect host {host!r}: only A-Z a-z 0-9 - . and #{{host}} are allowed")
    if not 1 <= len(path) <= 128:
        raise RuleError("redirect path must be 1 to 128 characters")
    if not path.startswith("/"):
        raise RuleError(f"redirect path {path!r} must start with '/'")
    if len(query) > 128:
        raise RuleError("redirect query must be at most 128 characters")
    if query.startswith("?"):
        raise RuleError("redirect query must not start with '?' (it is added automatically)")
    status = config.get("status_code")
    if status not in _STATUS:
        raise RuleError(f"redirect status_code {status!r} must be one of {', '.join(_STATUS)}")
    listener = listener_protocol.upper() if listener_protocol else None
    if listener == "HTTPS" and protocol == "HTTP":
        raise RuleError("a redirect from HTTPS to HTTP is not allowed")
    changed = (protocol not in ("#{protocol}", listener) or port not in ("#{port}", str(listener_port))
               or host != "#{host}" or path != "/#{path}")
    if not changed:
        raise RuleError("the redirect would loop: change at least one of protocol, port, host or path")


def redirect_status(config: dict) -> int:
    """The redirect's HTTP status: 301, 302, 307 or 308."""
    try:
        return _STATUS[config.get("status_code")]
    except KeyError:
        raise RuleError(f"redirect status_code {config.get('status_code')!r} is not supported") from None


@lru_cache(maxsize=1024)
def _templates(*parts: str) -> tuple:
    """Each part as ``(literal, keyword, literal, …)``: keywords at the odd places."""
    return tuple(tuple(p.encode("ascii") if i % 2 == 0 else p for i, p in enumerate(_KEYWORD.split(v)))
                 for v in parts)


def _expand(template: tuple, words: dict[str, bytes | None]) -> bytes | None:
    out = template[0]
    for i in range(1, len(template), 2):
        word = words.get(template[i])
        if word is None:
            return None
        out += word + template[i + 1]
    return out


def redirect_location(config: dict, view: RequestView) -> bytes | None:
    """The ``Location`` URL of a redirect action for this request (ALB §2.3 semantics).

    ``None`` when the URL cannot be given: longer than 8 KiB, ``#{host}`` without a Host, or
    holding a byte not allowed in a header (the caller answers 500).
    """
    templates = _templates(*(_part(config, n) for n in _DEFAULTS))
    host = _strip_port(view.host) if view.host else None
    path = view.path
    words = {"protocol": view.scheme.encode("ascii"), "host": host or None, "port": str(view.port).encode("ascii"),
             "path": path[1:] if path[:1] == b"/" else path, "query": view.query}
    parts = [_expand(t, words) for t in templates]
    if None in parts:
        return None
    protocol, port, host, path, query = parts
    protocol = protocol.lower()
    if (protocol, port) in ((b"https", b"443"), (b"http", b"80")):
        authority = host
    else:
        authority = host + b":" + port
    url = b"%s://%s%s" % (protocol, authority, path)
    if query:
        url += b"?" + query
    if len(url) > MAX_REDIRECT_URL or _URL_BAD(url):
        return None
    return url

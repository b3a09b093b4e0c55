"""Listener rules and redirects: transcripts of ALB §2.1–2.3 behaviour (src/albatross/proxy/router.py)."""

from __future__ import annotations

import time
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from albatross.proxy.router import (
    CompiledRule,
    RequestView,
    Router,
    RuleError,
    check_rule_conditions,
    compile_condition,
    compile_rule,
    count_condition_values,
    count_wildcards,
    redirect_location,
    redirect_status,
    validate_redirect,
)


def view(method: bytes = b"GET", path: bytes = b"/", query: bytes = b"", host: bytes | None = b"example.com",
         headers: list | None = None, source_ip: str = "203.0.113.7", scheme: str = "http", port: int = 80) -> RequestView:
    return RequestView(method, path, query, host, headers or [], source_ip, scheme, port)


def host(*values):
    return compile_condition({"field": "host-header", "host_header_config": {"values": list(values)}})


def path(*values):
    return compile_condition({"field": "path-pattern", "path_pattern_config": {"values": list(values)}})


def header(name, *values):
    return compile_condition({"field": "http-header",
                              "http_header_config": {"http_header_name": name, "values": list(values)}})


def method(*values):
    return compile_condition({"field": "http-request-method", "http_request_method_config": {"values": list(values)}})


def query(*pairs):
    return compile_condition({"field": "query-string", "query_string_config": {"values": list(pairs)}})


def source(*values):
    return compile_condition({"field": "source-ip", "source_ip_config": {"values": list(values)}})


def refused(spec: dict, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        compile_condition(spec)


# ------------------------------------------------------------------ host-header

def test_host_header_exact_is_case_insensitive_and_ignores_the_port():
    c = host("www.example.com")
    assert c.matches(view(host=b"www.example.com"))
    assert c.matches(view(host=b"WWW.Example.COM"))
    assert c.matches(view(host=b"www.example.com:8080"))
    assert not c.matches(view(host=b"example.com"))
    assert not c.matches(view(host=b"www.example.com.evil"))
    assert not c.matches(view(host=None))


def test_host_header_upper_case_pattern_matches_lower_case_host():
    assert host("API.Example.com").matches(view(host=b"api.example.com"))


def test_host_header_star_needs_the_dot():
    c = host("*.example.com")
    assert c.matches(view(host=b"a.example.com"))
    assert c.matches(view(host=b"a.b.example.com:443"))
    assert c.matches(view(host=b".example.com"))  # '*' is zero or more characters
    assert not c.matches(view(host=b"example.com"))
    assert not c.matches(view(host=b"notexample.com"))


def test_host_header_question_mark_is_exactly_one_character():
    c = host("api?.example.com")
    assert c.matches(view(host=b"api1.example.com"))
    assert not c.matches(view(host=b"api.example.com"))
    assert not c.matches(view(host=b"api12.example.com"))


def test_host_header_ipv6_literal_port_is_stripped_before_matching():
    c = host("*.example.com")
    assert not c.matches(view(host=b"[::1]:8080"))  # host patterns can't name an IPv6 literal
    assert host("*.com").matches(view(host=b"a.com:1"))


def test_host_header_values_are_ored():
    c = host("a.example.com", "b.example.org")
    assert c.matches(view(host=b"b.example.org"))
    assert not c.matches(view(host=b"c.example.com"))


def test_host_header_with_control_character_never_matches():
    assert not host("*.example.com").matches(view(host=b"a\x01.example.com"))
    assert not host("*.example.com").matches(view(host=b"\xc3\xa9.example.com"))


def test_host_header_legacy_values_form():
    c = compile_condition({"field": "host-header", "values": ["example.com"]})
    assert c.matches(view(host=b"example.com"))
    assert not c.matches(view(host=b"example.org"))


@pytest.mark.parametrize("value, reason", [
    ("", "must not be empty"),
    ("a" * 125 + ".com", "longer than 128"),
    ("example_com.com", "only A-Z"),
    ("exa mple.com", "only A-Z"),
    ("localhost", "at least one '.'"),
    ("example.c0m", "only letters may follow the last"),
    ("example.*", "only letters may follow the last"),
    ("example.", "only letters may follow the last"),
])
def test_host_header_refused_values(value, reason):
    refused({"field": "host-header", "host_header_config": {"values": [value]}}, reason)


def test_host_header_at_most_128_is_accepted():
    assert host("a" * 124 + ".com").matches(view(host=b"a" * 124 + b".com"))


# ------------------------------------------------------------------ path-pattern

def test_path_pattern_is_case_sensitive_and_ignores_the_query():
    c = path("/api/*")
    assert c.matches(view(path=b"/api/users"))
    assert c.matches(view(path=b"/api/"))
    assert not c.matches(view(path=b"/API/users"))
    assert not c.matches(view(path=b"/api"))
    assert c.matches(view(path=b"/api/x", query=b"other=/y"))
    assert not path("*y*").matches(view(path=b"/api/x", query=b"y=1"))


def test_path_pattern_wildcards():
    assert path("/img/*.png").matches(view(path=b"/img/a/b.png"))
    assert not path("/img/*.png").matches(view(path=b"/img/a.jpg"))
    assert path("/v?/items").matches(view(path=b"/v2/items"))
    assert not path("/v?/items").matches(view(path=b"/v10/items"))
    assert path("*").matches(view(path=b"/anything"))
    assert path("*/b/*/d").matches(view(path=b"/a/b/c/d"))
    assert not path("*/b/*/d").matches(view(path=b"/a/b/d"))
    assert path("/a*?b").matches(view(path=b"/axb"))
    assert not path("/a*?b").matches(view(path=b"/ab"))
    assert not path("*/b*/b*").matches(view(path=b"/b/xy"))  # two pieces can't share one occurrence
    assert path("*/b*/b*").matches(view(path=b"/b/b"))
    assert path("**/x").matches(view(path=b"/x"))
    assert not path("/x*x").matches(view(path=b"/x"))  # prefix and suffix may not overlap
    assert path("/x*x").matches(view(path=b"/xx"))


def test_path_pattern_is_compared_as_received_not_decoded():
    assert not path("/a?b").matches(view(path=b"/a%20b"))  # decoded, '%20' would be one character
    assert path("/a*b").matches(view(path=b"/a%20b"))


def test_path_pattern_ampersand_spellings():
    assert path("/a&b").matches(view(path=b"/a&b"))
    assert path("/a&amp;b").matches(view(path=b"/a&b"))
    assert not path("/a&amp;b").matches(view(path=b"/a&amp;b"))


def test_path_pattern_control_character_defeats_star():
    assert not path("/*").matches(view(path=b"/a\x7fb"))
    assert not path("/*").matches(view(path=b"/a\x00"))


@pytest.mark.parametrize("value, reason", [("", "must not be empty"), ("/a%20b", "only A-Z"), ("/a;b", "only A-Z"),
                                           ("/" + "a" * 128, "longer than 128"), ("/a b", "only A-Z")])
def test_path_pattern_refused_values(value, reason):
    refused({"field": "path-pattern", "path_pattern_config": {"values": [value]}}, reason)


def test_pathological_pattern_is_fast():
    c = path("*a*a*a*a*b")
    started = time.perf_counter()
    assert not c.matches(view(path=b"/" + b"a" * 16000))
    assert time.perf_counter() - started < 2.0


# ------------------------------------------------------------------ http-header

def test_http_header_name_and_value_are_case_insensitive():
    c = header("X-Canary", "yes")
    assert c.matches(view(headers=[(b"x-canary", b"YES")]))
    assert c.matches(view(headers=[(b"X-CANARY", b"yes")]))
    assert not c.matches(view(headers=[(b"x-canary", b"no")]))
    assert not c.matches(view(headers=[(b"x-canary-2", b"yes")]))
    assert not c.matches(view(headers=[]))


def test_http_header_each_occurrence_is_tried():
    c = header("User-Agent", "*Mobile*")
    assert c.matches(view(headers=[(b"user-agent", b"Desktop"), (b"user-agent", b"X Mobile Y")]))
    assert not c.matches(view(headers=[(b"user-agent", b"Desktop"), (b"user-agent", b"Tablet")]))


def test_http_header_wildcards_and_or():
    c = header("X-Env", "stag?", "prod-*")
    assert c.matches(view(headers=[(b"x-env", b"stage")]))
    assert c.matches(view(headers=[(b"x-env", b"PROD-eu")]))
    assert not c.matches(view(headers=[(b"x-env", b"staging")]))


def test_http_header_surrounding_whitespace_is_not_part_of_the_value():
    assert header("X-A", "b").matches(view(headers=[(b"x-a", b" b\t")]))


def test_http_header_control_character_never_matches():
    assert not header("X-A", "*").matches(view(headers=[(b"x-a", b"a\x1bb")]))


@pytest.mark.parametrize("name, values, reason", [
    ("Host", ["a"], "cannot be Host"),
    ("HOST", ["a"], "cannot be Host"),
    ("X-*", ["a"], "wildcards are not allowed"),
    ("X Y", ["a"], "not a valid header name"),
    ("X-" + "a" * 39, ["a"], "longer than 40"),
    ("", ["a"], "must not be empty"),
    ("X-A", [], "at least one value"),
    ("X-A", [""], "must not be empty"),
    ("X-A", ["a" * 129], "longer than 128"),
    ("X-A", ["a\tb"], "control or non-ASCII"),
])
def test_http_header_refused(name, values, reason):
    refused({"field": "http-header", "http_header_config": {"http_header_name": name, "values": values}}, reason)


# ------------------------------------------------------------------ http-request-method

def test_method_is_exact_and_case_sensitive():
    c = method("GET", "HEAD")
    assert c.matches(view(method=b"GET"))
    assert c.matches(view(method=b"HEAD"))
    assert not c.matches(view(method=b"get"))
    assert not c.matches(view(method=b"POST"))
    assert method("CUSTOM_METHOD").matches(view(method=b"CUSTOM_METHOD"))


@pytest.mark.parametrize("value, reason", [("get", "only A-Z"), ("G*", "only A-Z"), ("GET1", "only A-Z"),
                                           ("A" * 41, "longer than 40"), ("", "must not be empty")])
def test_method_refused(value, reason):
    refused({"field": "http-request-method", "http_request_method_config": {"values": [value]}}, reason)


# ------------------------------------------------------------------ query-string

def test_query_key_value_case_insensitive():
    c = query({"key": "debug", "value": "true"})
    assert c.matches(view(query=b"DEBUG=TRUE"))
    assert c.matches(view(query=b"a=1&debug=true&b=2"))
    assert not c.matches(view(query=b"debug=false"))
    assert not c.matches(view(query=b"xdebug=true"))
    assert not c.matches(view(query=b""))


def test_query_value_only_matches_any_key():
    c = query({"value": "x"})
    assert c.matches(view(query=b"a=1&b=x"))
    assert not c.matches(view(query=b"x=1"))
    assert not c.matches(view(query=b"x"))  # '?x' is a key with an empty value


def test_query_key_without_value_is_a_key_with_empty_value():
    assert query({"key": "debug", "value": "*"}).matches(view(query=b"debug"))
    assert not query({"key": "debug", "value": "?*"}).matches(view(query=b"debug"))


def test_query_any_listed_pair_satisfies():
    c = query({"key": "a", "value": "1"}, {"key": "b", "value": "2"})
    assert c.matches(view(query=b"b=2"))
    assert not c.matches(view(query=b"a=2&b=1"))


def test_query_pair_must_match_in_one_parameter():
    assert not query({"key": "a", "value": "2"}).matches(view(query=b"a=1&b=2"))


def test_query_wildcards_and_escapes():
    assert query({"key": "v*", "value": "1?"}).matches(view(query=b"version=10"))
    assert not query({"key": "v*", "value": "1?"}).matches(view(query=b"version=1"))
    literal_star = query({"value": "a\\*"})
    assert literal_star.matches(view(query=b"k=a*"))
    assert not literal_star.matches(view(query=b"k=ab"))
    literal_q = query({"value": "\\?"})
    assert literal_q.matches(view(query=b"k=?"))  # a '?' after the first one is data
    assert not literal_q.matches(view(query=b"k=x"))


def test_query_values_are_percent_decoded_plus_is_not_a_space():
    c = query({"key": "name", "value": "a b"})
    assert c.matches(view(query=b"name=a%20b"))
    assert c.matches(view(query=b"n%61me=a%20B"))
    assert not c.matches(view(query=b"name=a+b"))
    assert query({"value": "a+b"}).matches(view(query=b"k=a+b"))
    assert query({"value": "a%20b"}).matches(view(query=b"k=a b"))  # conditions decode too


def test_query_encoded_star_is_data_not_a_wildcard():
    assert query({"value": "%2A"}).matches(view(query=b"k=*"))
    assert not query({"value": "%2A"}).matches(view(query=b"k=abc"))
    assert query({"value": "*"}).matches(view(query=b"k=%2A"))


def test_query_decoding_to_control_or_non_ascii_never_matches():
    assert not query({"value": "*"}).matches(view(query=b"k=%00"))
    assert not query({"value": "*"}).matches(view(query=b"k=%C3%A9"))
    assert query({"value": "*"}).matches(view(query=b"k=%C3%A9&j=ok"))


@pytest.mark.parametrize("values, reason", [
    ([{"key": "a"}], "must be a string"),
    ([{"key": "a", "value": ""}], "must not be empty"),
    ([{"key": "", "value": "a"}], "must not be empty"),
    ([{"value": "a" * 129}], "longer than 128"),
    ([{"value": "a\x01"}], "control or non-ASCII"),
    (["a=b"], "mappings"),
])
def test_query_refused(values, reason):
    refused({"field": "query-string", "query_string_config": {"values": values}}, reason)


# ------------------------------------------------------------------ source-ip

def test_source_ip_v4_cidr():
    c = source("10.0.0.0/8", "192.0.2.1/32")
    assert c.matches(view(source_ip="10.200.3.4"))
    assert c.matches(view(source_ip="192.0.2.1"))
    assert not c.matches(view(source_ip="192.0.2.2"))
    assert not c.matches(view(source_ip="11.0.0.1"))


def test_source_ip_v6_cidr():
    c = source("2001:db8::/32", "::1/128")
    assert c.matches(view(source_ip="2001:db8:1::5"))
    assert c.matches(view(source_ip="::1"))
    assert not c.matches(view(source_ip="2001:db9::1"))
    assert not c.matches(view(source_ip="10.0.0.1"))


def test_source_ip_v4_mapped_v6_peer_is_compared_as_v4():
    assert source("10.0.0.0/8").matches(view(source_ip="::ffff:10.1.2.3"))
    assert not source("::/0").matches(view(source_ip="::ffff:10.1.2.3"))


def test_source_ip_unparsable_peer_never_matches():
    assert not source("0.0.0.0/0").matches(view(source_ip="-"))


@pytest.mark.parametrize("value, reason", [("255.255.255.255/32", "not allowed"), ("10.0.0.1", "CIDR block"),
                                           ("10.0.0.1/8", "not a valid CIDR"), ("10.0.0.0/33", "not a valid CIDR"),
                                           ("fe80::/10x", "not a valid CIDR")])
def test_source_ip_refused(value, reason):
    refused({"field": "source-ip", "source_ip_config": {"values": [value]}}, reason)


# ------------------------------------------------------------------ condition-level refusals and counts

def test_unknown_field_missing_config_and_regex_values_refused():
    refused({"field": "cookie", "values": ["a"]}, "unknown condition field")
    refused({"field": "http-request-method"}, "needs http_request_method_config.values")
    refused({"field": "path-pattern", "path_pattern_config": {"values": []}}, "at least one value")
    refused({"field": "path-pattern", "regex_values": ["^/a"]}, "regex_values are not supported")


def test_more_than_five_values_in_one_condition_refused_unless_lifted():
    spec = {"field": "path-pattern", "path_pattern_config": {"values": [f"/{i}" for i in range(6)]}}
    refused(spec, "6 values; at most 5")
    assert compile_condition(spec, max_values=None).matches(view(path=b"/5"))


def test_counts_per_rule():
    specs = [{"field": "host-header", "host_header_config": {"values": ["*.a.com", "b.com"]}},
             {"field": "query-string", "query_string_config": {"values": [{"key": "a", "value": "\\*"}, {"value": "?"}]}},
             {"field": "path-pattern", "values": ["/x*"]}]
    assert count_condition_values(specs) == 5
    assert count_wildcards(specs) == 3  # '*', '?', '*'; the escaped '\*' is a literal


def test_rule_quotas_and_single_fields():
    six = [{"field": "http-header", "http_header_config": {"http_header_name": f"X-{i}", "values": ["a"]}}
           for i in range(6)]
    with pytest.raises(RuleError, match="6 condition values; at most 5"):
        check_rule_conditions(six)
    check_rule_conditions(six, enforce_quotas=False)
    wild = [{"field": "path-pattern", "path_pattern_config": {"values": ["/*a*b*c*d*"]}},
            {"field": "host-header", "host_header_config": {"values": ["*.a.com"]}}]
    with pytest.raises(RuleError, match="6 wildcards; at most 5"):
        check_rule_conditions(wild)
    twice = [{"field": "path-pattern", "values": ["/a"]}, {"field": "path-pattern", "values": ["/b"]}]
    with pytest.raises(RuleError, match="only one path-pattern"):
        check_rule_conditions(twice, enforce_quotas=False)
    two_headers = [{"field": "http-header", "http_header_config": {"http_header_name": "X-A", "values": ["1"]}}] * 2
    check_rule_conditions(two_headers)


# ------------------------------------------------------------------ rules, AND/OR, priority, default

def test_conditions_are_anded_values_ored():
    rule = compile_rule(1, [{"field": "host-header", "host_header_config": {"values": ["a.com", "b.com"]}},
                            {"field": "path-pattern", "path_pattern_config": {"values": ["/api/*"]}}], "api")
    router = Router([rule], "default")
    assert router.route(view(host=b"b.com", path=b"/api/x")) == (1, "api")
    assert router.route(view(host=b"b.com", path=b"/web")) == (0, "default")
    assert router.route(view(host=b"c.com", path=b"/api/x")) == (0, "default")


def test_two_header_conditions_and_two_values():
    both = compile_rule(1, [{"field": "http-header", "http_header_config": {"http_header_name": "X-A", "values": ["1"]}},
                            {"field": "http-header", "http_header_config": {"http_header_name": "X-B", "values": ["2"]}}], "both")
    router = Router([both], "default")
    assert router.route(view(headers=[(b"x-a", b"1"), (b"x-b", b"2")])) == (1, "both")
    assert router.route(view(headers=[(b"x-a", b"1")])) == (0, "default")


def test_lowest_priority_first_whatever_the_list_order():
    rules = [compile_rule(20, [{"field": "path-pattern", "values": ["/*"]}], "broad"),
             compile_rule(5, [{"field": "path-pattern", "values": ["/api/*"]}], "narrow"),
             CompiledRule(50000, (), "catch-all")]
    router = Router(rules, "default")
    assert [r.priority for r in router.rules] == [5, 20, 50000]
    assert router.route(view(path=b"/api/x")) == (5, "narrow")
    assert router.route(view(path=b"/web")) == (20, "broad")
    assert router.route(view(path=b"*")) == (50000, "catch-all")


def test_default_rule_is_priority_zero():
    assert Router([], "fixed-404").route(view()) == (0, "fixed-404")


@pytest.mark.parametrize("priorities, reason", [([1, 1], "used twice"), ([0], "from 1 to 50000"),
                                                ([50001], "from 1 to 50000"), ([True], "from 1 to 50000")])
def test_router_refuses_bad_priorities(priorities, reason):
    with pytest.raises(RuleError, match=reason):
        Router([CompiledRule(p, (), "x") for p in priorities], "default")


# ------------------------------------------------------------------ redirects

CANONICAL = {"protocol": "HTTPS", "port": "443", "host": "#{host}", "path": "/#{path}", "query": "#{query}",
             "status_code": "HTTP_301"}


def test_canonical_http_to_https_redirect():
    validate_redirect(CANONICAL, "HTTP")
    assert redirect_status(CANONICAL) == 301
    assert redirect_location(CANONICAL, view(host=b"example.com", path=b"/a/b", query=b"x=1")) == \
        b"https://example.com/a/b?x=1"
    assert redirect_location(CANONICAL, view(host=b"example.com:80", path=b"/")) == b"https://example.com/"


def test_unspecified_parts_keep_the_original():
    config = {"protocol": "HTTPS", "status_code": "HTTP_302"}
    assert redirect_location(config, view(host=b"example.com", path=b"/p", query=b"q", port=8080)) == \
        b"https://example.com:8080/p?q"
    assert redirect_status(config) == 302


def test_port_is_omitted_only_when_default_for_the_scheme():
    base = {"host": "#{host}", "status_code": "HTTP_301"}
    v = view(host=b"example.com", path=b"/")
    assert redirect_location({**base, "protocol": "HTTPS", "port": "443"}, v) == b"https://example.com/"
    assert redirect_location({**base, "protocol": "HTTP", "port": "80"}, v) == b"http://example.com/"
    assert redirect_location({**base, "protocol": "HTTP", "port": "443"}, v) == b"http://example.com:443/"
    assert redirect_location({**base, "protocol": "HTTPS", "port": "80"}, v) == b"https://example.com:80/"
    assert redirect_location({**base, "protocol": "HTTPS", "port": "8443"}, v) == b"https://example.com:8443/"


def test_each_keyword_expands():
    v = view(host=b"shop.example.com:8080", path=b"/cart/items", query=b"a=1", scheme="http", port=8080)
    config = {"protocol": "#{protocol}", "port": "#{port}", "host": "new.#{host}",
              "path": "/#{host}/#{port}/#{path}", "query": "p=#{protocol}&q=#{query}&path=#{path}", "status_code": "HTTP_301"}
    validate_redirect(config, "HTTP")
    assert redirect_location(config, v) == (
        b"http://new.shop.example.com:8080/shop.example.com/8080/cart/items?p=http&q=a=1&path=cart/items")


def test_path_keyword_has_no_leading_slash():
    config = {"path": "/v2/#{path}", "status_code": "HTTP_301"}
    assert redirect_location(config, view(path=b"/old/page")) == b"http://example.com/v2/old/page"
    assert redirect_location(config, view(path=b"/")) == b"http://example.com/v2/"


def test_query_gets_question_mark_only_when_non_empty():
    config = {"path": "/new", "status_code": "HTTP_301"}
    assert redirect_location(config, view(query=b"")) == b"http://example.com/new"
    assert redirect_location(config, view(query=b"z=9")) == b"http://example.com/new?z=9"
    assert redirect_location({**config, "query": ""}, view(query=b"z=9")) == b"http://example.com/new"
    assert redirect_location({**config, "query": "a=b"}, view(query=b"z=9")) == b"http://example.com/new?a=b"


def test_protocol_is_lower_case_in_the_url():
    assert redirect_location({"protocol": "HTTPS", "status_code": "HTTP_301"}, view(port=443)) == \
        b"https://example.com/"


def test_literal_host_and_ipv6_host():
    assert redirect_location({"host": "other.example", "status_code": "HTTP_301"}, view(host=None)) == \
        b"http://other.example/"
    assert redirect_location(CANONICAL, view(host=b"[2001:db8::1]:80")) == b"https://[2001:db8::1]/"
    assert redirect_location(CANONICAL, view(host=None)) is None


def test_redirect_over_8_kib_gives_none():
    prefix = len(b"https://example.com/")
    assert redirect_location(CANONICAL, view(path=b"/" + b"a" * (8192 - prefix))) is not None
    assert len(redirect_location(CANONICAL, view(path=b"/" + b"a" * (8192 - prefix)))) == 8192
    assert redirect_location(CANONICAL, view(path=b"/" + b"a" * (8193 - prefix))) is None


def test_redirect_never_carries_a_control_character():
    assert redirect_location(CANONICAL, view(host=b"a.com\r\nSet-Cookie: x")) is None


def test_307_and_308_beyond_alb():
    assert redirect_status({**CANONICAL, "status_code": "HTTP_307"}) == 307
    assert redirect_status({**CANONICAL, "status_code": "HTTP_308"}) == 308
    with pytest.raises(RuleError):
        redirect_status({**CANONICAL, "status_code": "HTTP_303"})


@pytest.mark.parametrize("change, listener, reason", [
    ({"protocol": "#{protocol}", "port": "#{port}"}, None, "would loop"),
    ({"status_code": "HTTP_301", "protocol": None, "port": None, "host": None, "path": None, "query": "x=1"}, None,
     "would loop"),
    ({"port": "#{port}"}, "HTTPS", "would loop"),  # HTTPS on an HTTPS listener changes nothing
    ({"protocol": "HTTP", "port": "80"}, "HTTPS", "HTTPS to HTTP"),
    ({"protocol": "https"}, None, "must be HTTP, HTTPS"),
    ({"protocol": "FTP"}, None, "must be HTTP, HTTPS"),
    ({"port": "0"}, None, "1-65535"),
    ({"port": "65536"}, None, "1-65535"),
    ({"port": "44x"}, None, "1-65535"),
    ({"status_code": "HTTP_303"}, None, "status_code"),
    ({"status_code": None}, None, "status_code"),
    ({"path": "#{path}"}, None, "must start with '/'"),
    ({"path": ""}, None, "1 to 128"),
    ({"path": "/" + "a" * 128}, None, "1 to 128"),
    ({"host": ""}, None, "1 to 128"),
    ({"host": "a" * 129}, None, "1 to 128"),
    ({"host": "a/b"}, None, "only A-Z"),
    ({"query": "?a=1"}, None, "must not start with '?'"),
    ({"query": "a" * 129}, None, "at most 128"),
    ({"host": "#{path}.com"}, None, r"#\{path\} is not allowed here"),
    ({"host": "#{port}.com"}, None, r"#\{port\} is not allowed here"),
    ({"port": "#{host}"}, None, r"#\{host\} is not allowed here"),
    ({"path": "/#{query}"}, None, r"#\{query\} is not allowed here"),
    ({"path": "/#{protocol}"}, None, r"#\{protocol\} is not allowed here"),
    ({"protocol": "#{port}"}, None, r"#\{port\} is not allowed here"),
    ({"query": "#{fragment}"}, None, r"unknown keyword #\{fragment\}"),
])
def test_redirect_validation_errors(change, listener, reason):
    with pytest.raises(RuleError, match=reason):
        validate_redirect({**CANONICAL, **change}, listener)


def test_redirect_validation_accepts_the_allowed_shapes():
    validate_redirect(CANONICAL, "HTTP")
    validate_redirect(CANONICAL, "HTTPS")  # HTTPS→HTTPS on another port is allowed
    validate_redirect({"host": "www.#{host}", "status_code": "HTTP_302"}, "HTTPS")
    validate_redirect({"protocol": "HTTP", "port": 8080, "status_code": "HTTP_301"}, "HTTP")
    validate_redirect({"path": "/#{path}/", "query": "", "status_code": "HTTP_301"})
    with pytest.raises(RuleError, match="would loop"):
        validate_redirect({"port": "8080", "status_code": "HTTP_301"}, "HTTP", listener_port=8080)


# ------------------------------------------------------------------ properties

@lru_cache(maxsize=None)
def reference(pattern: str, text: str) -> bool:
    """Naive glob: '*' any run, '?' one character, everything else literal."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return reference(pattern[1:], text) or (bool(text) and reference(pattern, text[1:]))
    return bool(text) and (head == "?" or head == text[0]) and reference(pattern[1:], text[1:])


PATTERNS = st.text(alphabet="ab/.*?", min_size=1, max_size=12)
PATHS = st.text(alphabet="ab/.", max_size=14)


@settings(max_examples=500, deadline=None)
@given(PATTERNS, PATHS)
def test_compiled_path_pattern_agrees_with_naive_reference(pattern, text):
    assert path(pattern).matches(view(path=text.encode())) == reference(pattern, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abAB-.", min_size=1, max_size=20))
def test_pattern_without_wildcards_is_exact_match(text):
    c = header("X-A", text)
    assert c.matches(view(headers=[(b"x-a", text.encode())]))
    assert c.matches(view(headers=[(b"x-a", text.swapcase().encode())]))
    assert not c.matches(view(headers=[(b"x-a", text.encode() + b"x")]))
    assert not c.matches(view(headers=[(b"x-a", text.encode()[1:])]))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?\\", min_size=1, max_size=8), st.text(alphabet="ab*?", max_size=8))
def test_query_escapes_agree_with_reference(pattern, text):
    # the reference treats everything but '*' and '?' as literal: spell the escaped ones as 'S'/'Q' there
    literal = pattern.replace("\\*", "S").replace("\\?", "Q")
    data = text.replace("*", "S").replace("?", "Q")
    assert query({"value": pattern}).matches(view(query=b"k=" + text.encode())) == reference(literal, data)

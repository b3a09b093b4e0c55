"""Routing algorithms, slow start and sticky cookies over a fake clock and a seeded RNG
(src/albatross/targets/balancing.py, group.py; alb-reference §3.3, §3.4, §3.6)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from albatross.targets import group as g
from albatross.targets.balancing import (
    ANOMALY_WEIGHT_FACTOR,
    LeastOutstandingRequests,
    RoundRobin,
    WeightedRandom,
    anomalous,
    available_balancers,
    create_balancer,
    register_balancer,
)
from albatross.targets.health import HealthCheckSettings, TargetHealth


@dataclass(eq=False)
class T:
    name: str
    outstanding: int = 0
    w: float = 1.0
    errors: float = 0.0

    def weight(self, now: float) -> float:
        return self.w


def binomial_p_value(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: P(outcomes no likelier than k)."""
    def log_pmf(i: int) -> float:
        return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                + i * math.log(p) + (n - i) * math.log1p(-p))
    observed = log_pmf(k)
    return min(1.0, sum(math.exp(lp) for lp in map(log_pmf, range(n + 1)) if lp <= observed + 1e-9))


# -- registry -------------------------------------------------------------------------------------

def test_registry():
    assert {"round_robin", "least_outstanding_requests", "weighted_random"} <= set(available_balancers())
    assert isinstance(create_balancer("round_robin"), RoundRobin)
    assert isinstance(create_balancer("least_outstanding_requests"), LeastOutstandingRequests)
    wr = create_balancer("weighted_random", rng=random.Random(1), anomaly_mitigation=True)
    assert isinstance(wr, WeightedRandom) and wr.anomaly_mitigation
    with pytest.raises(ValueError, match="unknown load balancing algorithm 'random'"):
        create_balancer("random")
    with pytest.raises(ValueError, match="requires weighted_random"):
        create_balancer("round_robin", anomaly_mitigation=True)


def test_register_custom():
    class First(RoundRobin):
        name = "first"

        def choose(self, candidates, now):
            return candidates[0] if candidates else None

    register_balancer("first", lambda *, rng=None, anomaly_mitigation=False: First())
    assert create_balancer("first").choose([T("a"), T("b")], 0.0).name == "a"


@pytest.mark.parametrize("name", ["round_robin", "least_outstanding_requests", "weighted_random"])
def test_empty_and_single(name):
    b = create_balancer(name, rng=random.Random(0))
    assert b.choose([], 0.0) is None
    only = T("only")
    assert all(b.choose([only], 0.0) is only for _ in range(5))


# -- round robin ------------------------------------------------------------------------------------

def test_round_robin_rotates_fairly():
    targets = [T("a"), T("b"), T("c")]
    rr = RoundRobin()
    picks = [rr.choose(targets, 0.0).name for _ in range(300)]
    assert picks[:6] == ["a", "b", "c", "a", "b", "c"]
    assert Counter(picks) == {"a": 100, "b": 100, "c": 100}


def test_round_robin_follows_weights_and_membership_changes():
    a, b = T("a", w=1.0), T("b", w=0.25)
    rr = RoundRobin()
    picks = Counter(rr.choose([a, b], 0.0).name for _ in range(500))
    assert picks == {"a": 400, "b": 100}
    c = T("c")
    picks = [rr.choose([a, c], 0.0).name for _ in range(10)]  # b left, c joined
    assert Counter(picks) == {"a": 5, "c": 5}


# -- least outstanding requests ----------------------------------------------------------------------

def test_least_outstanding_prefers_the_idle_target():
    busy, idle = T("busy", outstanding=3), T("idle", outstanding=0)
    lor = LeastOutstandingRequests()
    assert lor.choose([busy, idle], 0.0) is idle


def test_least_outstanding_as_requests_start_and_finish():
    a, b = T("a"), T("b")
    lor = LeastOutstandingRequests()
    for _ in range(4):  # each pick starts a request that stays in flight
        lor.choose([a, b], 0.0).outstanding += 1
    assert (a.outstanding, b.outstanding) == (2, 2)
    a.outstanding -= 2  # a answered quickly
    assert lor.choose([a, b], 0.0) is a


def test_least_outstanding_ties_rotate():
    targets = [T("a", 1), T("b", 0), T("c", 0), T("d", 0)]
    lor = LeastOutstandingRequests()
    picks = Counter(lor.choose(targets, 0.0).name for _ in range(300))
    assert picks == {"b": 100, "c": 100, "d": 100}


def test_least_outstanding_ignores_weights():
    assert LeastOutstandingRequests().choose([T("a", 1, w=1.0), T("b", 0, w=0.01)], 0.0).name == "b"


# -- weighted random -----------------------------------------------------------------------------------

def test_weighted_random_distribution():
    targets = [T("a", w=1.0), T("b", w=2.0), T("c", w=1.0)]
    wr = WeightedRandom(rng=random.Random(20240501))
    n = 10_000
    counts = Counter(wr.choose(targets, 0.0).name for _ in range(n))
    for name, p in (("a", 0.25), ("b", 0.5), ("c", 0.25)):
        assert binomial_p_value(counts[name], n, p) > 0.001, (name, counts)


def test_weighted_random_is_reproducible_with_the_same_seed():
    targets = [T("a"), T("b"), T("c")]
    first, second = WeightedRandom(random.Random(7)), WeightedRandom(random.Random(7))
    picks = [first.choose(targets, 0).name for _ in range(50)]
    assert picks == [second.choose(targets, 0).name for _ in range(50)]
    assert len(set(picks)) == 3


def test_zero_weights_still_choose():
    targets = [T("a", w=0.0), T("b", w=0.0)]
    rr = RoundRobin()
    assert Counter(rr.choose(targets, 0).name for _ in range(10)) == {"a": 5, "b": 5}
    assert WeightedRandom(random.Random(1)).choose(targets, 0) in targets


def test_anomaly_detection_needs_three_targets_and_a_clear_outlier():
    assert anomalous([T("a", errors=0.9), T("b")]) == [False, False]
    assert anomalous([T("a", errors=0.5), T("b", errors=0.01), T("c", errors=0.02)]) == [True, False, False]
    assert anomalous([T("a", errors=0.05), T("b"), T("c")]) == [False, False, False]  # below the floor
    assert anomalous([T("a", errors=0.3), T("b", errors=0.25), T("c", errors=0.2)]) == [False] * 3  # all bad


def test_anomaly_mitigation_reduces_the_outliers_share():
    targets = [T("bad", errors=0.6), T("b", errors=0.01), T("c")]
    off, on = WeightedRandom(random.Random(3)), WeightedRandom(random.Random(3), anomaly_mitigation=True)
    assert off.weights(targets, 0.0) == [1.0, 1.0, 1.0]
    assert on.weights(targets, 0.0) == [ANOMALY_WEIGHT_FACTOR, 1.0, 1.0]
    n = 10_000
    counts = Counter(on.choose(targets, 0.0).name for _ in range(n))
    share = ANOMALY_WEIGHT_FACTOR / (2 + ANOMALY_WEIGHT_FACTOR)
    assert binomial_p_value(counts["bad"], n, share) > 0.001, counts


def test_member_error_rate_decays_and_mitigation_lifts():
    health = TargetHealth(HealthCheckSettings(), 0.0)
    m = g.Member("m", health)
    for _ in range(100):
        m.record_response(False)
    assert m.errors > 0.8
    for _ in range(300):
        m.record_response(True)
    assert m.errors < 0.01
    assert anomalous([m, T("b"), T("c")]) == [False, False, False]


# -- slow start --------------------------------------------------------------------------------------

def test_slow_start_weight_ramp():
    assert g.slow_start_weight(None, 60, 100.0) == 1.0
    assert g.slow_start_weight(100.0, 0, 100.0) == 1.0
    assert g.slow_start_weight(100.0, 60, 100.0) == pytest.approx(g.SLOW_START_INITIAL_WEIGHT)
    assert g.slow_start_weight(100.0, 60, 130.0) == pytest.approx((1 + g.SLOW_START_INITIAL_WEIGHT) / 2)
    assert g.slow_start_weight(100.0, 60, 160.0) == 1.0
    assert g.slow_start_weight(100.0, 60, 90.0) == pytest.approx(g.SLOW_START_INITIAL_WEIGHT)
    ramp = [g.slow_start_weight(0.0, 60, t) for t in range(0, 61, 5)]
    assert ramp == sorted(ramp) and ramp[-1] == 1.0


def healthy_member(name: str, now: float, slow: float = 60) -> g.Member:
    m = g.Member(name, TargetHealth(HealthCheckSettings(), now), slow_start_seconds=slow)
    m.health.record(now, status=200)
    return m


def test_slow_start_entry_rules_and_share():
    old = healthy_member("old", 0.0)
    old.refresh_slow_start(0.0, [old])
    assert old.slow_start_from is None and old.weight(0.0) == 1.0  # alone: nobody to ramp against
    new = healthy_member("new", 100.0)
    new.refresh_slow_start(100.0, [old, new])
    assert new.slow_start_from == 100.0 and new.weight(100.0) == pytest.approx(g.SLOW_START_INITIAL_WEIGHT)
    rr = RoundRobin()
    early = Counter(rr.choose([old, new], 110.0).id for _ in range(1000))
    assert early["new"] < early["old"] / 3
    assert new.weight(160.0) == 1.0  # ramp over
    assert Counter(rr.choose([old, new], 160.0).id for _ in range(1000)) == {"old": 500, "new": 500}


def test_targets_registered_together_skip_slow_start():
    a = g.Member("a", TargetHealth(HealthCheckSettings(), 0.0), slow_start_seconds=60)
    b = g.Member("b", TargetHealth(HealthCheckSettings(), 0.0), slow_start_seconds=60)
    a.health.record(0.0, status=200)  # a passes first, b a moment later
    a.refresh_slow_start(0.0, [a, b])
    b.health.record(0.3, status=200)
    b.refresh_slow_start(0.3, [a, b])
    assert a.slow_start_from is None and b.slow_start_from is None
    assert a.weight(1.0) == b.weight(1.0) == 1.0
    late = g.Member("late", TargetHealth(HealthCheckSettings(), 50.0), slow_start_seconds=60)
    late.health.record(50.0, status=200)
    late.refresh_slow_start(50.0, [a, b, late])  # registered into a group with healthy targets
    assert late.slow_start_from == 50.0


def test_slow_start_ends_when_unhealthy_and_restarts_on_recovery():
    old = healthy_member("old", 0.0)
    new = healthy_member("new", 100.0)
    new.refresh_slow_start(100.0, [old, new])
    for t in (130.0, 160.0):
        new.health.record(t, status=500)
    assert new.health.state == "unhealthy" and new.weight(160.0) == 1.0
    t = 160.0
    while new.health.state != "healthy":
        t += 30
        new.health.record(t, status=200)
    new.refresh_slow_start(t, [old, new])
    assert new.slow_start_from == t and new.weight(t) == pytest.approx(g.SLOW_START_INITIAL_WEIGHT)
    new.health.deregister(t + 1, 300)
    assert new.weight(t + 1) == 1.0


# -- stickiness ------------------------------------------------------------------------------------------

KEY = b"k" * 32


def test_sticky_round_trip_and_expiry():
    value = g.encode_sticky("tg-1/target-7", 1_700_000_000.0, 86400, KEY)
    assert value.isascii() and all(c.isalnum() or c in "-_" for c in value)
    assert g.decode_sticky(value, 1_700_000_000.0, KEY) == "tg-1/target-7"
    assert g.decode_sticky(value, 1_700_086_399.0, KEY) == "tg-1/target-7"
    assert g.decode_sticky(value, 1_700_086_400.0, KEY) is None  # binding stale


def test_sticky_tamper_and_wrong_key_rejected():
    value = g.encode_sticky("t1", 0.0, 100, KEY)
    assert g.decode_sticky(value, 0.0, b"other" * 8) is None
    for i in range(len(value)):
        flipped = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
        assert g.decode_sticky(flipped, 0.0, KEY) is None, i
    forged = g.encode_sticky("t2", 0.0, 100, b"attacker-key")
    assert g.decode_sticky(forged, 0.0, KEY) is None
    for junk in ("", "%%%", "AAAA", "not base64!", value[:-3]):
        assert g.decode_sticky(junk, 0.0, KEY) is None


def test_sticky_key_rotation():
    old, new = g.new_sticky_key(), g.new_sticky_key()
    assert old != new and len(old) == 32
    value = g.encode_sticky("t1", 0.0, 100, old)
    assert g.decode_sticky(value, 1.0, new) is None
    assert g.decode_sticky(value, 1.0, new, previous_keys=[old]) == "t1"


def test_sticky_duration_range():
    with pytest.raises(ValueError):
        g.encode_sticky("t", 0.0, 0, KEY)
    with pytest.raises(ValueError):
        g.encode_sticky("t", 0.0, 604801, KEY)


def test_lb_cookie_headers():
    alb, cors = g.lb_cookie_headers("VAL", 0.0)
    assert alb == "AWSALB=VAL; Expires=Thu, 08 Jan 1970 00:00:00 GMT; Path=/"
    assert cors == "AWSALBCORS=VAL; Expires=Thu, 08 Jan 1970 00:00:00 GMT; Path=/; SameSite=None; Secure"
    assert g.lb_cookie_value({"AWSALB": "x", "AWSALBCORS": "y"}) == "x"
    assert g.lb_cookie_value({"AWSALBCORS": "y"}) == "y"
    assert g.lb_cookie_value({}) is None


def test_sticky_member_honoured_only_when_routable_or_failing_open():
    a, b = healthy_member("a", 0.0), g.Member("b", TargetHealth(HealthCheckSettings(), 0.0))
    cands = g.select_candidates([a, b], 0.0)
    assert g.sticky_member(cands, "a") is a
    assert g.sticky_member(cands, "b") is None and g.sticky_member(cands, None) is None
    open_cands = g.select_candidates([b], 0.0)
    assert open_cands.fail_open and g.sticky_member(open_cands, "b") is b


def test_app_cookie_names_and_validation():
    assert g.app_cookie_names() == ["AWSALBAPP-0", "AWSALBAPP-1", "AWSALBAPP-2", "AWSALBAPP-3"]
    assert g.validate_app_cookie_name("SESSIONID") == "SESSIONID"
    for bad in ("AWSALB", "AWSALBAPP-0", "AWSALBTGx", "AWSALBfoo", "", "a b", "a=b", "a;b"):
        with pytest.raises(ValueError):
            g.validate_app_cookie_name(bad)


def test_app_cookie_round_trip_and_shards():
    pairs = g.encode_app_sticky("t9", 0.0, 86400, KEY, app_value="abc")
    assert [n for n, _ in pairs] == g.app_cookie_names()
    assert [v for _, v in pairs][1:] == ["_remove_"] * 3
    cookies = dict(pairs)
    assert g.decode_app_sticky(cookies, 10.0, KEY) == "t9"
    assert g.decode_app_sticky(cookies, 10.0, KEY, app_value="abc") == "t9"
    assert g.decode_app_sticky(cookies, 10.0, KEY, app_value="other") is None
    assert g.decode_app_sticky(cookies, 86400.0, KEY) is None
    assert g.decode_app_sticky({}, 0.0, KEY) is None

    big = g.encode_app_sticky("t9", 0.0, 86400, KEY, app_value="x" * 9000)
    shards = [v for _, v in big]
    assert all(len(v) <= g.APP_SHARD_CHARS for v in shards) and shards[-1] != "_remove_"
    assert g.decode_app_sticky(dict(big), 1.0, KEY, app_value="x" * 9000) == "t9"
    tampered = dict(big)
    tampered["AWSALBAPP-2"] = "A" + tampered["AWSALBAPP-2"][1:]
    assert g.decode_app_sticky(tampered, 1.0, KEY) is None
    with pytest.raises(ValueError, match="too large"):
        g.encode_app_sticky("t9", 0.0, 86400, KEY, app_value="x" * 13000)

    headers = g.app_cookie_headers(pairs, 0.0)
    assert headers[0].startswith("AWSALBAPP-0=") and headers[0].endswith("; Path=/")
    assert g.app_cookie_headers(pairs, 0.0, same_site_none=True)[0].endswith("; SameSite=None; Secure")

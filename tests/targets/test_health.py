"""Health checks as transcripts over a fake clock (src/albatross/targets/health.py, alb-reference §3.2, §3.5).

Also fail-open and the draining lifecycle seen from the group (src/albatross/targets/group.py).
"""

from __future__ import annotations

import math

import pytest

from albatross.targets.group import Member, select_candidates
from albatross.targets.health import HealthCheckSettings, TargetHealth


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def run_checks(h: TargetHealth, clock: Clock, until: float, **result) -> list[tuple[float, str, str | None]]:
    """The scheduler loop the I/O layer runs: probe when due, record, note transitions."""
    seen = []
    while h.next_check_at() <= until:
        clock.t = h.next_check_at()
        before = h.state
        h.record(clock.t, **result)
        if h.state != before:
            seen.append((clock.t, h.state, h.reason))
    clock.t = until
    return seen


# -- settings and matcher ------------------------------------------------------------------------

def test_defaults_are_albs():
    s = HealthCheckSettings()
    assert (s.enabled, s.path, s.port, s.protocol) == (True, "/", "traffic-port", "HTTP")
    assert (s.interval_seconds, s.timeout_seconds, s.healthy_threshold, s.unhealthy_threshold) == (30, 5, 5, 2)
    assert s.matcher == "200" and s.matches(200) and not s.matches(204)
    assert s.check_port(8080) == 8080 and HealthCheckSettings(port="9000").check_port(8080) == 9000


@pytest.mark.parametrize("text, ranges", [
    ("200", ((200, 200),)),
    ("200,202", ((200, 200), (202, 202))),
    ("200-299", ((200, 299),)),
    (" 200 , 300-399 ", ((200, 200), (300, 399))),
    ("499", ((499, 499),)),
])
def test_parse_matcher(text, ranges):
    assert HealthCheckSettings.parse_matcher(text) == ranges


@pytest.mark.parametrize("text, why", [
    ("", "empty"), ("199", "outside 200-499"), ("500", "outside 200-499"), ("200-500", "outside"),
    ("299-200", "reversed"), ("2OO", "not an HTTP status"), ("200,", "not an HTTP status"),
    ("20", "not an HTTP status"), ("200-", "not an HTTP status"), ("*", "not an HTTP status"),
])
def test_parse_matcher_rejects(text, why):
    with pytest.raises(ValueError, match=why):
        HealthCheckSettings.parse_matcher(text)


def test_matches_lists_and_ranges():
    s = HealthCheckSettings(matcher="200,202,300-302")
    assert [c for c in range(100, 600) if s.matches(c)] == [200, 202, 300, 301, 302]


@pytest.mark.parametrize("kwargs, what", [
    ({"interval_seconds": 4}, "interval_seconds"), ({"interval_seconds": 301}, "interval_seconds"),
    ({"timeout_seconds": 1}, "timeout_seconds"), ({"healthy_threshold": 1}, "healthy_threshold"),
    ({"unhealthy_threshold": 11}, "unhealthy_threshold"), ({"protocol": "TCP"}, "protocol"),
    ({"path": "health"}, "path"), ({"port": "0"}, "port"), ({"matcher": "600"}, "600"),
    ({"interval_seconds": 10, "timeout_seconds": 10}, "greater than timeout"),
])
def test_settings_validation(kwargs, what):
    with pytest.raises(ValueError, match=what):
        HealthCheckSettings(**kwargs)


# -- transitions ---------------------------------------------------------------------------------

def test_new_target_is_initial_then_healthy_after_one_pass():
    clock = Clock()
    h = TargetHealth(HealthCheckSettings(), clock())
    assert (h.state, h.reason, h.description) == ("initial", "Elb.InitialHealthChecking",
                                                   "Initial health checks in progress")
    assert h.next_check_at() == clock() and not h.routable and h.registered
    h.record(clock(), status=200)
    assert (h.state, h.reason, h.description) == ("healthy", None, None)
    assert h.routable and h.healthy_since == clock()
    assert h.describe() == {"State": "healthy"}
    assert h.next_check_at() == clock() + 30


def test_new_target_failing_stays_initial_until_threshold():
    clock = Clock()
    h = TargetHealth(HealthCheckSettings(), clock())
    h.record(clock(), status=503)
    assert h.state == "initial"
    h.record(clock.advance(30), status=503)
    assert (h.state, h.reason) == ("unhealthy", "Target.ResponseCodeMismatch")
    assert h.description == "Health checks failed with these codes: [503]"
    assert h.describe() == {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch",
                            "Description": "Health checks failed with these codes: [503]"}


def test_healthy_needs_consecutive_failures():
    clock = Clock()
    h = TargetHealth(HealthCheckSettings(), clock())
    h.record(clock(), status=200)
    h.record(clock.advance(30), error="timeout")
    assert h.state == "healthy"  # one failure is below the threshold of 2
    h.record(clock.advance(30), status=200)  # resets the failure count
    h.record(clock.advance(30), error="timeout")
    assert h.state == "healthy"
    h.record(clock.advance(30), error="timeout")
    assert (h.state, h.reason, h.description) == ("unhealthy", "Target.Timeout", "Request timed out")
    assert not h.routable and h.healthy_since is None


@pytest.mark.parametrize("error, reason, description", [
    ("timeout", "Target.Timeout", "Request timed out"),
    ("refused", "Target.FailedHealthChecks", "Health checks failed"),
    ("malformed", "Target.FailedHealthChecks", "Health checks failed"),
    ("internal", "Elb.InternalError", "Health checks failed due to an internal error"),
])
def test_failure_reasons(error, reason, description):
    clock = Clock()
    h = TargetHealth(HealthCheckSettings(), clock())
    for _ in range(2):
        h.record(clock.advance(30), error=error)
    assert (h.state, h.reason, h.description) == ("unhealthy", reason, description)


def test_unhealthy_reason_follows_latest_failure_and_recovery_needs_threshold():
    clock = Clock()
    h = TargetHealth(HealthCheckSettings(), clock())
    h.record(clock(), error="refused")
    h.record(clock.advance(30), error="refused")
    assert h.reason == "Target.FailedHealthChecks"
    h.record(clock.advance(30), status=404)
    assert h.description == "Health checks failed with these codes: [404]"
    for i in range(4):
        h.record(clock.advance(30), status=200)
        assert (h.state, h.reason) == ("unhealthy", "Target.ResponseCodeMismatch"), i
    h.record(clock.advance(30), status=200)
    assert (h.state, h.reason) == ("healthy", None) and h.healthy_since == clock()


def test_record_needs_exactly_one_result():
    h = TargetHealth(HealthCheckSettings(), 0.0)
    with pytest.raises(ValueError):
        h.record(0.0)
    with pytest.raises(ValueError):
        h.record(0.0, status=200, error="timeout")


def test_schedule_does_not_drift_with_response_time():
    clock = Clock(0.0)
    h = TargetHealth(HealthCheckSettings(interval_seconds=10, timeout_seconds=5), clock())
    h.record(4.9, error="timeout")  # the probe due at 0 timed out at ~5 s
    assert h.next_check_at() == 10
    h.record(10.2, status=200)
    assert h.next_check_at() == 20
    h.record(95.0, status=200)  # a stalled scheduler catches up without a burst
    assert h.next_check_at() == 105


def test_failing_target_leaves_within_interval_times_threshold_and_returns():
    s = HealthCheckSettings(interval_seconds=10, timeout_seconds=5, healthy_threshold=3, unhealthy_threshold=2)
    clock = Clock(0.0)
    h = TargetHealth(s, clock())
    assert run_checks(h, clock, 25, status=200) == [(0.0, "healthy", None)]
    broke = clock()
    seen = run_checks(h, clock, broke + s.interval_seconds * s.unhealthy_threshold, error="refused")
    assert seen == [(40.0, "unhealthy", "Target.FailedHealthChecks")]
    assert seen[0][0] - broke <= s.interval_seconds * s.unhealthy_threshold
    fixed = clock()
    seen = run_checks(h, clock, fixed + s.interval_seconds * s.healthy_threshold, status=200)
    assert seen == [(70.0, "healthy", None)] and h.healthy_since == 70.0


def test_health_checks_disabled_is_unavailable_and_routable():
    h = TargetHealth(HealthCheckSettings(enabled=False), 5.0)
    assert (h.state, h.reason, h.description) == ("unavailable", "Target.HealthCheckDisabled",
                                                  "Health checks are disabled")
    assert h.routable and h.next_check_at() == math.inf
    h.record(6.0, status=500)  # ignored
    assert h.state == "unavailable"


# -- draining and unused -------------------------------------------------------------------------

def test_draining_lifecycle():
    clock = Clock(0.0)
    h = TargetHealth(HealthCheckSettings(), clock())
    h.record(0.0, status=200)
    h.deregister(clock.advance(1), delay_seconds=300)
    assert (h.state, h.reason, h.description) == ("draining", "Target.DeregistrationInProgress",
                                                  "Target deregistration is in progress")
    assert not h.routable and not h.registered and h.next_check_at() == math.inf
    assert h.next_deadline() == 301
    h.record(clock.advance(1), error="timeout")  # a late probe result changes nothing
    assert h.state == "draining"
    h.handle_timer(clock.advance(200))
    assert h.state == "draining" and not h.drained(clock())
    assert h.drained(301.0) and h.state == "draining"  # drained() does not move the state
    h.handle_timer(301.0)
    assert (h.state, h.reason) == ("unused", "Target.NotRegistered") and h.drained(301.0)
    assert h.next_deadline() == math.inf


def test_zero_delay_drains_at_once_and_bad_delay_rejected():
    h = TargetHealth(HealthCheckSettings(), 0.0)
    with pytest.raises(ValueError):
        h.deregister(0.0, 3601)
    h.deregister(0.0, 0)
    assert h.drained(0.0)
    h.handle_timer(0.0)
    assert h.state == "unused"


def test_not_in_use_and_back():
    h = TargetHealth(HealthCheckSettings(), 0.0)
    h.record(0.0, status=200)
    h.set_in_use(10.0, False)
    assert (h.state, h.reason) == ("unused", "Target.NotInUse") and h.next_check_at() == math.inf
    h.set_in_use(20.0, True)
    assert (h.state, h.reason) == ("initial", "Elb.InitialHealthChecking") and h.next_check_at() == 20.0


# -- the group: fail-open and draining -------------------------------------------------------------

def members(n: int, now: float = 0.0) -> list[Member]:
    return [Member(f"t{i}", TargetHealth(HealthCheckSettings(), now)) for i in range(n)]


def test_fail_open_when_no_target_is_healthy():
    group = members(3)
    for m in group:  # all initial: fail open to all of them
        assert not m.health.routable
    chosen = select_candidates(group, 0.0)
    assert chosen == group and chosen.fail_open
    group[1].health.record(0.0, status=200)
    chosen = select_candidates(group, 0.0)
    assert chosen == [group[1]] and not chosen.fail_open
    for t in (30.0, 60.0):
        group[1].health.record(t, status=500)
    chosen = select_candidates(group, 60.0)  # every target unhealthy or initial again
    assert chosen == group and chosen.fail_open


def test_fail_open_excludes_draining_and_unused():
    group = members(3)
    group[0].health.deregister(0.0, 300)
    group[1].health.set_in_use(0.0, False)
    assert select_candidates(group, 0.0) == [group[2]]
    group[2].health.deregister(0.0, 300)
    chosen = select_candidates(group, 0.0)
    assert chosen == [] and not chosen.fail_open  # nothing left: the caller answers 503


def test_minimum_healthy_count_and_percentage():
    group = members(4)
    group[0].health.record(0.0, status=200)
    assert select_candidates(group, 0.0, min_healthy_count=1) == [group[0]]
    assert select_candidates(group, 0.0, min_healthy_count=2).fail_open
    assert select_candidates(group, 0.0, min_healthy_percent=25) == [group[0]]
    assert select_candidates(group, 0.0, min_healthy_percent=50).fail_open

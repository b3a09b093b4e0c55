"""Health checks of one target: ALB's settings, states and reason codes, as a sans-I/O machine.

ALB's behaviour (alb-reference.md §3.2, §3.5):

* Defaults for HTTP/HTTPS target groups: enabled, ``GET /`` on the traffic port over HTTP, every
  30 s, 5 s timeout, healthy after 5 consecutive successes, unhealthy after 2 consecutive
  failures, matcher ``200``. Ranges: interval 5–300, timeout 2–120, thresholds 2–10, matcher
  codes 200–499 as a list (``200,202``) or a range (``200-299``).
* Each check is independent and its result holds for the whole interval; response time does not
  shift the schedule.
* States and reasons are those of DescribeTargetHealth: ``initial`` (``Elb.RegistrationInProgress``,
  ``Elb.InitialHealthChecking``), ``healthy`` (no reason), ``unhealthy``
  (``Target.ResponseCodeMismatch``, ``Target.Timeout``, ``Target.FailedHealthChecks``,
  ``Elb.InternalError``), ``draining`` (``Target.DeregistrationInProgress``), ``unused``
  (``Target.NotRegistered``, ``Target.NotInUse``, ...), ``unavailable``
  (``Target.HealthCheckDisabled``).
* A new target needs to pass **one** check to become healthy; afterwards healthy → unhealthy takes
  ``unhealthy_threshold`` consecutive failures and unhealthy → healthy ``healthy_threshold``
  consecutive successes.
* Deregistration: new requests stop at once, the state reads ``draining`` until the delay ends,
  then ``unused``.

Our decisions on points ALB leaves open ([?] in the reference):

* A registered target skips ``Elb.RegistrationInProgress`` (registration is instantaneous in a
  single-process balancer) and starts in ``initial``/``Elb.InitialHealthChecking`` with its first
  check due immediately (``next_check_at() == now``).
* A new target that keeps failing stays ``initial`` until ``unhealthy_threshold`` consecutive
  failures, then turns ``unhealthy`` with the reason of the last failure.
* ``unhealthy`` keeps the reason of the most recent failure; successes below the threshold do
  not clear it.
* The next check is due one interval after the previous one was due; a result recorded later than
  that (a stalled scheduler) schedules the next check one interval after the result.
* Health checks disabled (ALB allows it only for Lambda targets) → ``unavailable`` /
  ``Target.HealthCheckDisabled``, and such a target *is* routable, as ALB routes to it.
* ``routable`` is true for ``healthy`` and ``unavailable`` only. ``initial`` and ``unhealthy``
  targets receive traffic only through fail-open, decided at group level
  (:func:`albatross.targets.group.select_candidates`).
* Draining targets are no longer checked; probe results recorded while draining or unused are
  ignored (they belong to a probe started before the change).
* Descriptions follow the ALB console/DescribeTargetHealth wording ("Initial health checks in
  progress", "Health checks failed with these codes: [503]", ...); those not quoted in a stored
  source are our best rendering.
* The timeout must be smaller than the interval (ALB's API rejects the opposite as well).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# -- states -----------------------------------------------------------------------------------

INITIAL = "initial"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"
UNUSED = "unused"
UNAVAILABLE = "unavailable"
STATES = frozenset({INITIAL, HEALTHY, UNHEALTHY, DRAINING, UNUSED, UNAVAILABLE})

# -- reason codes (DescribeTargetHealth ``Reason``) and their descriptions ---------------------

REGISTRATION_IN_PROGRESS = "Elb.RegistrationInProgress"
INITIAL_HEALTH_CHECKING = "Elb.InitialHealthChecking"
RESPONSE_CODE_MISMATCH = "Target.ResponseCodeMismatch"
TIMEOUT = "Target.Timeout"
FAILED_HEALTH_CHECKS = "Target.FailedHealthChecks"
INTERNAL_ERROR = "Elb.InternalError"
DEREGISTRATION_IN_PROGRESS = "Target.DeregistrationInProgress"
NOT_REGISTERED = "Target.NotRegistered"
NOT_IN_USE = "Target.NotInUse"
INVALID_STATE = "Target.InvalidState"
IP_UNUSABLE = "Target.IpUnusable"
HEALTH_CHECK_DISABLED = "Target.HealthCheckDisabled"

DESCRIPTIONS: dict[str, str] = {
    REGISTRATION_IN_PROGRESS: "Target registration is in progress",
    INITIAL_HEALTH_CHECKING: "Initial health checks in progress",
    RESPONSE_CODE_MISMATCH: "Health checks failed with these codes: [{code}]",
    TIMEOUT: "Request timed out",
    FAILED_HEALTH_CHECKS: "Health checks failed",
    INTERNAL_ERROR: "Health checks failed due to an internal error",
    DEREGISTRATION_IN_PROGRESS: "Target deregistration is in progress",
    NOT_REGISTERED: "Target is not registered to the target group",
    NOT_IN_USE: "Target group is not configured to receive traffic from the load balancer",
    INVALID_STATE: "Target is in the stopped or terminated state",
    IP_UNUSABLE: "The IP address cannot be used as a target, as it is in use by a load balancer",
    HEALTH_CHECK_DISABLED: "Health checks are disabled",
}

#: ``error`` values of :meth:`TargetHealth.record` with a reason of their own; any other error
#: (``"refused"``, ``"reset"``, ``"malformed"``, ``"tls"`` ...) is ``Target.FailedHealthChecks``.
ERROR_REASONS: dict[str, str] = {"timeout": TIMEOUT, "internal": INTERNAL_ERROR}

MAX_DEREGISTRATION_DELAY = 3600


# -- settings ---------------------------------------------------------------------------------

def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


@dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    """A target group's health-check settings; the defaults are ALB's for HTTP target groups.

    Validated on construction (ALB's ranges); ``ValueError`` names the offending setting.
    """

    enabled: bool = True
    path: str = "/"
    port: str = "traffic-port"
    protocol: str = "HTTP"
    interval_seconds: int = 30
    timeout_seconds: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"
    _codes: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_codes", self.parse_matcher(self.matcher))
        if self.protocol not in ("HTTP", "HTTPS"):
            raise ValueError(f"protocol must be HTTP or HTTPS, got {self.protocol!r}")
        if not self.path.startswith("/") or len(self.path) > 1024:
            raise ValueError(f"path must start with '/' and be at most 1024 characters, got {self.path!r}")
        if self.port != "traffic-port":
            if not self.port.isdigit() or not 1 <= int(self.port) <= 65535:
                raise ValueError(f"port must be 'traffic-port' or 1-65535, got {self.port!r}")
        _check_range("interval_seconds", self.interval_seconds, 5, 300)
        _check_range("timeout_seconds", self.timeout_seconds, 2, 120)
        _check_range("healthy_threshold", self.healthy_threshold, 2, 10)
        _check_range("unhealthy_threshold", self.unhealthy_threshold, 2, 10)
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError("interval_seconds must be greater than timeout_seconds")

    def matches(self, status: int) -> bool:
        """Whether an HTTP ``status`` of a probe counts as a success."""
        return any(low <= status <= high for low, high in self._codes)

    def check_port(self, traffic_port: int) -> int:
        """The port to probe for a target that receives traffic on ``traffic_port``."""
        return traffic_port if self.port == "traffic-port" else int(self.port)

    @staticmethod
    def parse_matcher(text: str) -> tuple[tuple[int, int], ...]:
        """Parse ``Matcher.HttpCode`` into inclusive ``(low, high)`` ranges.

        Accepts a code (``200``), a comma-separated list (``200,202``), a range (``200-299``)
        and, as our extension, lists mixing both (``200,300-399``). Every code must lie in
        200–499, as ALB requires. Raises ``ValueError`` saying what is wrong.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("matcher is empty")
        ranges = []
        for item in text.split(","):
            item = item.strip()
            low_text, dash, high_text = item.partition("-")
            low, high = _code(low_text, text), _code(high_text if dash else low_text, text)
            if low > high:
                raise ValueError(f"matcher range {item!r} is reversed")
            ranges.append((low, high))
        return tuple(ranges)


def _code(token: str, text: str) -> int:
    token = token.strip()
    if not (token.isascii() and token.isdigit() and len(token) == 3):
        raise ValueError(f"matcher {text!r}: {token!r} is not an HTTP status code")
    code = int(token)
    if not 200 <= code <= 499:
        raise ValueError(f"matcher {text!r}: {code} is outside 200-499")
    return code


# -- the state machine --------------------------------------------------------------------------

class TargetHealth:
    """The health of one registered target, driven by probe results and ``now``.

    The I/O layer asks :meth:`next_check_at` (or :meth:`next_deadline`), runs the probe with
    ``settings.timeout_seconds`` and reports it with :meth:`record`; it calls
    :meth:`handle_timer` at the deadline so that a drained target turns ``unused``.
    """

    __slots__ = ("settings", "_state", "_reason", "_description", "_successes", "_failures",
                 "_due", "_drain_until", "healthy_since", "last_checked_at", "registered_at")

    def __init__(self, settings: HealthCheckSettings, now: float) -> None:
        self.settings = settings
        self._successes = 0
        self._failures = 0
        self._drain_until = math.inf
        #: When the target last became routable (``None`` while it is not): slow start's origin.
        self.healthy_since: float | None = None
        self.last_checked_at: float | None = None
        #: When the target was registered (or put back in use).
        self.registered_at = now
        if settings.enabled:
            self._set(INITIAL, INITIAL_HEALTH_CHECKING)
            self._due = now
        else:
            self._set(UNAVAILABLE, HEALTH_CHECK_DISABLED)
            self._due = math.inf
            self.healthy_since = now

    # -- read side ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        return self._state

    @property
    def reason(self) -> str | None:
        """The reason code; ``None`` when healthy."""
        return self._reason

    @property
    def description(self) -> str | None:
        """The human description of :attr:`reason`; ``None`` when healthy."""
        return self._description

    @property
    def routable(self) -> bool:
        """Whether the target takes new requests without fail-open (healthy, or unchecked)."""
        return self._state in (HEALTHY, UNAVAILABLE)

    @property
    def registered(self) -> bool:
        """Registered and not leaving: the targets fail-open may route to."""
        return self._state in (INITIAL, HEALTHY, UNHEALTHY, UNAVAILABLE)

    def describe(self) -> dict[str, str]:
        """The DescribeTargetHealth ``TargetHealth`` shape: State, Reason, Description."""
        out = {"State": self._state}
        if self._reason is not None:
            out["Reason"] = self._reason
            out["Description"] = self._description or ""
        return out

    def next_check_at(self) -> float:
        """When the next probe is due (``math.inf`` when none will be: disabled, draining, unused)."""
        return self._due

    def next_deadline(self) -> float:
        """The earliest time :meth:`handle_timer` or a probe has something to do."""
        return min(self._due, self._drain_until)

    def drained(self, now: float) -> bool:
        """Whether deregistration has completed (the delay has elapsed), without changing state."""
        return self._state == UNUSED or (self._state == DRAINING and now >= self._drain_until)

    # -- inputs ---------------------------------------------------------------------------------

    def record(self, now: float, *, status: int | None = None, error: str | None = None) -> None:
        """Record one probe: its HTTP ``status``, or an ``error`` (``"timeout"``, ``"refused"`` ...)."""
        if (status is None) == (error is None):
            raise ValueError("record() takes exactly one of status= or error=")
        if self._state not in (INITIAL, HEALTHY, UNHEALTHY):
            return  # a probe started before deregistration, or checks are off
        self.last_checked_at = now
        self._due = self._due + self.settings.interval_seconds
        if self._due <= now:
            self._due = now + self.settings.interval_seconds
        if error is None and self.settings.matches(status):  # type: ignore[arg-type]
            self._success(now)
        else:
            self._failure(status, error)

    def _success(self, now: float) -> None:
        self._failures = 0
        self._successes += 1
        if self._state == INITIAL or (
                self._state == UNHEALTHY and self._successes >= self.settings.healthy_threshold):
            self._set(HEALTHY, None)
            self.healthy_since = now

    def _failure(self, status: int | None, error: str | None) -> None:
        self._successes = 0
        self._failures += 1
        if error is not None:
            reason = ERROR_REASONS.get(error, FAILED_HEALTH_CHECKS)
        else:
            reason = RESPONSE_CODE_MISMATCH
        if self._state == UNHEALTHY or self._failures >= self.settings.unhealthy_threshold:
            self._set(UNHEALTHY, reason, code=status)
            self.healthy_since = None

    def deregister(self, now: float, delay_seconds: float) -> None:
        """Start deregistration: ``draining`` now, ``unused`` once ``delay_seconds`` have passed."""
        if not 0 <= delay_seconds <= MAX_DEREGISTRATION_DELAY:
            raise ValueError(f"deregistration delay must be 0-{MAX_DEREGISTRATION_DELAY} s, got {delay_seconds!r}")
        if self._state in (DRAINING, UNUSED):
            return
        self._set(DRAINING, DEREGISTRATION_IN_PROGRESS)
        self._due = math.inf
        self._drain_until = now + delay_seconds
        self.healthy_since = None

    def set_in_use(self, now: float, in_use: bool) -> None:
        """Mark the target group as (not) referenced by a listener rule (``Target.NotInUse``).

        Not in use: ``unused`` and no checks. In use again: health checking restarts from
        ``initial``. Draining or deregistered targets are not affected.
        """
        if self._state == DRAINING or self._reason == NOT_REGISTERED:
            return
        if not in_use:
            self._set(UNUSED, NOT_IN_USE)
            self._due = math.inf
            self.healthy_since = None
        elif self._state == UNUSED:
            self.__init__(self.settings, now)  # type: ignore[misc]

    def reconfigure(self, settings: HealthCheckSettings, now: float) -> None:
        """New health-check settings for a target that stays registered (a configuration reload).

        The state and the counts so far are kept, as when ALB's ModifyTargetGroup changes a
        group's checks; the next check comes no later than one new interval from now.
        Switching checks on or off starts over (``initial``, or ``unavailable``).
        """
        if settings == self.settings:
            return
        if settings.enabled != self.settings.enabled:
            registered_at = self.registered_at
            self.__init__(settings, now)  # type: ignore[misc]
            self.registered_at = registered_at
            return
        self.settings = settings
        if self._state in (INITIAL, HEALTHY, UNHEALTHY):
            self._due = min(self._due, now + settings.interval_seconds)

    def handle_timer(self, now: float) -> None:
        """Complete a deregistration whose delay has elapsed (``unused``/``Target.NotRegistered``)."""
        if self._state == DRAINING and now >= self._drain_until:
            self._set(UNUSED, NOT_REGISTERED)
            self._drain_until = math.inf

    # -- helpers --------------------------------------------------------------------------------

    def _set(self, state: str, reason: str | None, *, code: int | None = None) -> None:
        self._state = state
        self._reason = reason
        self._description = None if reason is None else DESCRIPTIONS[reason].format(code=code)

    def __repr__(self) -> str:
        return f"<TargetHealth {self._state} {self._reason or ''}>".replace(" >", ">")

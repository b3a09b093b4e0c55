"""Routing algorithms of a target group, behind a registry (aioquic's congestion-control pattern).

ALB's behaviour (alb-reference.md §3.3–3.4): ``load_balancing.algorithm.type`` is
``round_robin`` (default), ``least_outstanding_requests`` or ``weighted_random``, the last with
``load_balancing.algorithm.anomaly_mitigation`` on|off (default off). Slow start ramps a target's
share linearly; it cannot be combined with least outstanding requests. Stickiness, when it
applies, bypasses the algorithm (decided by the caller before :meth:`Balancer.choose`).

A balancer only chooses; it neither filters (that is
:func:`albatross.targets.group.select_candidates`) nor counts requests (the caller increments
``outstanding``). Candidates are any objects exposing:

* ``outstanding: int`` — requests in flight to the target (HTTP/2 streams count one each);
* ``weight(now) -> float`` — the slow-start share in (0, 1], 1 when not ramping;
* ``errors: float`` (optional) — the target's recent error *rate* in [0, 1] (5XX answers and
  connection/TLS errors over its recent requests, e.g. an exponentially weighted mean).

Our decisions ([?] points):

* ``round_robin`` is *smooth weighted* round robin (nginx's algorithm): with equal weights it is
  plain rotation in candidate order; during slow start a target's share follows its weight.
  The per-target state is keyed by object identity and pruned to the current candidates.
* ``least_outstanding_requests`` ignores weights (ALB forbids slow start with it) and breaks
  ties by rotating among the tied targets.
* ``weighted_random`` draws with probability proportional to ``weight(now)``, from an injected
  ``random.Random``. Anomaly mitigation, "best effort" because ALB publishes no thresholds:
  with at least 3 candidates (ALB's detection minimum), a target whose error rate is at least
  :data:`ANOMALY_MIN_RATE` and more than :data:`ANOMALY_RATIO` times the candidates' median is
  *anomalous* and its weight is multiplied by :data:`ANOMALY_WEIGHT_FACTOR`. Because the median
  is the reference, fewer than half the targets can be mitigated at once; the weight comes back
  by itself as the target's error rate decays (ALB's "ramps back gradually").
"""

from __future__ import annotations

import random
import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

__all__ = [
    "ANOMALY_MIN_RATE", "ANOMALY_RATIO", "ANOMALY_WEIGHT_FACTOR", "Balancer", "BalancerFactory",
    "Candidate", "LeastOutstandingRequests", "RoundRobin", "WeightedRandom", "anomalous",
    "available_balancers", "create_balancer", "register_balancer",
]

ANOMALY_MIN_RATE = 0.1       # an error rate below this is never anomalous
ANOMALY_RATIO = 2.0          # ... and it must exceed this multiple of the group's median rate
ANOMALY_WEIGHT_FACTOR = 0.1  # an anomalous target keeps this fraction of its weight


class Candidate(Protocol):
    """What a balancer needs from a target (``errors`` is optional, read with ``getattr``)."""

    outstanding: int

    def weight(self, now: float) -> float: ...


T = TypeVar("T", bound=Candidate)


class Balancer(ABC):
    """Chooses one target among candidates; stateful only for fairness (cursors, credits)."""

    name: str = ""

    @abstractmethod
    def choose(self, candidates: Sequence[T], now: float) -> T | None:
        """The target for the next request, or ``None`` when ``candidates`` is empty."""


class BalancerFactory(Protocol):
    def __call__(self, *, rng: random.Random | None = None,
                 anomaly_mitigation: bool = False) -> Balancer: ...


# -- algorithms ----------------------------------------------------------------------------------

class RoundRobin(Balancer):
    """Smooth weighted round robin: every pick adds each weight to its credit, the highest
    credit wins and pays the total back. Equal weights give strict rotation."""

    name = "round_robin"

    def __init__(self) -> None:
        self._credit: dict[int, float] = {}

    def choose(self, candidates: Sequence[T], now: float) -> T | None:
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        credit = {id(c): self._credit.get(id(c), 0.0) for c in candidates}  # prunes departed targets
        weights = [max(c.weight(now), 0.0) for c in candidates]
        total = sum(weights)
        if total <= 0:  # nothing has a share: rotate evenly
            weights, total = [1.0] * len(candidates), float(len(candidates))
        best: T | None = None
        for c, w in zip(candidates, weights):
            credit[id(c)] += w
            if best is None or credit[id(c)] > credit[id(best)]:
                best = c
        assert best is not None
        credit[id(best)] -= total
        self._credit = credit
        return best


class LeastOutstandingRequests(Balancer):
    """The target with the fewest requests in flight; ties rotate among the tied targets."""

    name = "least_outstanding_requests"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, candidates: Sequence[T], now: float) -> T | None:
        if not candidates:
            return None
        least = min(c.outstanding for c in candidates)
        tied = [c for c in candidates if c.outstanding == least]
        if len(tied) == 1:
            return tied[0]
        self._turn += 1
        return tied[self._turn % len(tied)]


class WeightedRandom(Balancer):
    """A random draw weighted by slow start and, optionally, anomaly mitigation."""

    name = "weighted_random"

    def __init__(self, rng: random.Random | None = None, anomaly_mitigation: bool = False) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.anomaly_mitigation = anomaly_mitigation

    def weights(self, candidates: Sequence[Candidate], now: float) -> list[float]:
        """The effective weights the next draw uses (exposed for tests and DescribeTargetHealth)."""
        weights = [max(c.weight(now), 0.0) for c in candidates]
        if self.anomaly_mitigation:
            for i, bad in enumerate(anomalous(candidates)):
                if bad:
                    weights[i] *= ANOMALY_WEIGHT_FACTOR
        return weights

    def choose(self, candidates: Sequence[T], now: float) -> T | None:
        if not candidates:
            return None
        weights = self.weights(candidates, now)
        total = sum(weights)
        if total <= 0:
            return candidates[self.rng.randrange(len(candidates))]
        point = self.rng.random() * total
        for c, w in zip(candidates, weights):
            point -= w
            if point < 0:
                return c
        return candidates[-1]  # float rounding


def anomalous(candidates: Sequence[Candidate]) -> list[bool]:
    """Which candidates' error rates are anomalous against their peers (see module docstring)."""
    rates = [float(getattr(c, "errors", 0.0) or 0.0) for c in candidates]
    if len(rates) < 3:
        return [False] * len(rates)
    median = statistics.median(rates)
    return [r >= ANOMALY_MIN_RATE and r > ANOMALY_RATIO * median for r in rates]


# -- registry ----------------------------------------------------------------------------------

_FACTORIES: dict[str, Callable[..., Balancer]] = {}


def register_balancer(name: str, factory: BalancerFactory | Callable[..., Balancer]) -> None:
    """Make ``factory`` available as ``load_balancing.algorithm.type`` = ``name``."""
    _FACTORIES[name] = factory


def available_balancers() -> list[str]:
    """The registered algorithm names, sorted."""
    return sorted(_FACTORIES)


def create_balancer(name: str, *, rng: random.Random | None = None,
                    anomaly_mitigation: bool = False) -> Balancer:
    """A new balancer for one target group. ``ValueError`` for an unknown name, or for anomaly
    mitigation with an algorithm other than ``weighted_random`` (ALB rejects it too)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown load balancing algorithm {name!r} "
                         f"(known: {', '.join(available_balancers())})") from None
    return factory(rng=rng, anomaly_mitigation=anomaly_mitigation)


def _plain(cls: type[Balancer]) -> Callable[..., Balancer]:
    def factory(*, rng: random.Random | None = None, anomaly_mitigation: bool = False) -> Balancer:
        if anomaly_mitigation:
            raise ValueError(f"anomaly mitigation requires weighted_random, not {cls.name}")
        return cls()
    return factory


register_balancer(RoundRobin.name, _plain(RoundRobin))
register_balancer(LeastOutstandingRequests.name, _plain(LeastOutstandingRequests))
register_balancer(WeightedRandom.name, WeightedRandom)

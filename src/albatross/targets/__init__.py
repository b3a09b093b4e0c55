"""The upstream side of a target group, as pure policy: no sockets, no clocks.

* :mod:`albatross.targets.health` — health-check settings and the per-target health state
  machine (ALB's states and reason codes, thresholds, draining).
* :mod:`albatross.targets.balancing` — the routing algorithms behind a register/create registry
  (``round_robin``, ``least_outstanding_requests``, ``weighted_random``).
* :mod:`albatross.targets.group` — fail-open candidate selection, slow-start weights and the
  stickiness cookie codecs (``AWSALB``/``AWSALBCORS``, ``AWSALBAPP-0..3``).

Every function that depends on time takes ``now: float``; the I/O layer owns the clock and the
timers (style.md §1.5, rule 7).
"""

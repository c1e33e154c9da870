"""A circuit breaker written for the real process, timing its cooldown with the ``time`` module.

Code written on the global reactor commonly measures durations with
``time.monotonic()`` (or, wrongly, ``time.time()``). With
``Target(global_reactor="lend")`` those calls read the run's clock
(``harness.guard.lent_time``): ``monotonic`` its virtual time, which only moves
forward, ``time`` its wall-clock reading, which the schedule jumps forward and
back. So the breaker below is tested as it is, with no clock passed in.

The promise is ``scenarios.breaker``'s: after ``THRESHOLD`` failures in a row
calls are rejected with ``CircuitOpen`` for ``COOLDOWN_MS``, then one trial
call at a time is admitted (target invariant ``one_trial_at_a_time``). The
breaker needs no timer: it notes when it tripped and, at each call, turns
half-open if the cooldown has passed since. Measured with ``monotonic`` (bound
at import: ``from time import monotonic``) it is immune to wall-clock jumps;
measured with ``time.time()`` a forward jump inside the cooldown ends it early
(``scenarios.wall_breaker`` has the same bug on ``clock.seconds()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from time import monotonic
from typing import Any

from twisted.internet import defer, reactor

from harness import Target

from . import Scenario
from .breaker import COOLDOWN_MS, CircuitBreaker, _breaker


class MonotonicBreaker(CircuitBreaker):
    """The circuit breaker, half-open at the first call ``COOLDOWN_MS`` after the trip by ``time.monotonic()``.

    Ignores the clock it is built with (its base's ``clock`` is the global reactor, never called): at the trip it notes
    ``monotonic()``, and a call finding it open turns it half-open when ``monotonic()`` has moved on by
    the cooldown since. A breaker stopped while open stays open.
    """

    def __init__(self, clock: object = None) -> None:
        super().__init__(reactor)  # (not the run's clock: it is not given one)
        self.opened_at = 0.0

    def trip(self) -> None:
        self.state = "open"
        self.opened_at = self._now()

    def _now(self) -> float:
        return monotonic()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.state == "open" and self._now() - self.opened_at >= COOLDOWN_MS / 1000:
            self.state = "half-open"
        return super().submit(job)


class WallClockBreaker(MonotonicBreaker):
    """The breaker, but the cooldown is measured with ``time.time()``.

    BUG: ``time.time()`` is the wall clock, which jumps: a forward jump during the cooldown ends it at
    once, and the next call runs while the breaker should still be open. Caught by:
    ``user.one_trial_at_a_time``.
    """

    def _now(self) -> float:
        return time.time()


def _lending(build: Callable[[Any], Any], description: str) -> Target:
    return replace(_breaker(build, description), global_reactor="lend")


monotonic_breaker = _lending(MonotonicBreaker, "circuit breaker timing its cooldown with time.monotonic()")
wall_clock_breaker = _lending(WallClockBreaker, "circuit breaker timing its cooldown with time.time()")

SCENARIOS = (
    Scenario(
        "scenarios.global_time:monotonic_breaker",
        "pass",
        "opens after 2 failures; half-open at the first call 100ms after the trip by time.monotonic() (lent the run's clock)",
        "time.monotonic",
    ),
    Scenario(
        "scenarios.global_time:wall_clock_breaker",
        "user.one_trial_at_a_time",
        "the cooldown measured by time.time(): a forward jump inside it lets a call run while open",
        "time.time",
    ),
)

"""A circuit breaker that turns half-open lazily, when a call comes: its cooldown check can read the wall clock.

The promise is the breaker's (``scenarios.breaker``): after ``THRESHOLD``
failures in a row calls are rejected with ``CircuitOpen`` for
``COOLDOWN_MS``, then one trial call at a time is admitted (target invariant
``one_trial_at_a_time``). A breaker that needs no timer callback switches to
half-open lazily, when a call arrives after the cooldown. Measured by the
trip's ``callLater``, the cooldown is immune to wall-clock jumps; measured by
two ``seconds()`` readings (at the trip and at the call) it is shortened by
a forward jump *between the two readings*. The window is narrow: the breaker
must have tripped (two failures in a row), a forward jump must land inside
its 100 ms cooldown, and a call must come after the jump but still within
the cooldown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from . import Scenario
from .breaker import COOLDOWN_MS, CircuitBreaker, _breaker


class LazyBreaker(CircuitBreaker):
    """The circuit breaker, half-open only when a call arrives after the cooldown, measured by the trip's timer.

    The cooldown timer only marks the end of the cooldown (a flag); the next
    call after it finds the breaker half-open. A breaker stopped while open
    stays open.
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self.opened_at = 0.0
        self.cooled = False

    def trip(self) -> None:
        super().trip()
        self.opened_at = self.clock.seconds()
        self.cooled = False

    def _half_open(self) -> None:
        self._timer = None
        self.cooled = True  # the next call finds the breaker half-open

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.state == "open" and self._cooled_down():
            self.state = "half-open"
        return super().submit(job)

    def _cooled_down(self) -> bool:
        return self.cooled  # not "no timer": stop() cancels the timer of an open breaker


class WallCooldownBreaker(LazyBreaker):
    """The lazy breaker, but the cooldown is measured from the trip's ``seconds()`` reading.

    BUG: ``_cooled_down`` compares two wall-clock readings: a forward jump
    during the cooldown ends it at once, and the next call runs while the
    breaker should still be open. Caught by: ``user.one_trial_at_a_time``.
    """

    def _cooled_down(self) -> bool:
        return self.clock.seconds() - self.opened_at >= COOLDOWN_MS / 1000


lazy_breaker = _breaker(LazyBreaker, "circuit breaker turning half-open lazily, after the trip's cooldown timer fired")
wall_cooldown_breaker = _breaker(
    WallCooldownBreaker, "circuit breaker turning half-open lazily when seconds() says the cooldown is over"
)

SCENARIOS = (
    Scenario(
        "scenarios.wall_breaker:lazy_breaker",
        "pass",
        "opens after 2 failures; half-open at the first call after the 100ms cooldown, measured by a callLater",
        "callLater",
    ),
    Scenario(
        "scenarios.wall_breaker:wall_cooldown_breaker",
        "user.one_trial_at_a_time",
        "the cooldown measured by two seconds() readings: a forward jump inside it lets a call run while open",
        "callLater, seconds()",
    ),
)

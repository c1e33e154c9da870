"""A reconnecting client that looks the peer up again after its 3rd failure in a row: stop() must still reach that wait.

The promise is the backoff loop's (``scenarios.backoff_loop``): an attempt at
once on ``start``; after the k-th failure in a row the next attempt comes
``delay(k)`` later; a success resets the count; never an attempt after
``stop()`` and nothing left scheduled. On exactly the ``SLOW_AFTER``-th
failure in a row the client logs that the peer looks down and waits on a
path of its own (in a real client it would look the address up again
first). That wait is where a bug can hide: it is reached only by three
failures in a row with no success between them, and shows only if the
subject is stopped during that one wait (the 4th failure goes back to the
ordinary path).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .backoff_loop import ReconnectingClient, backoff_range, delay_ms

SLOW_AFTER = 3

log = Logger()


class SlowLaneClient(ReconnectingClient):
    """Reconnects with exponential backoff; the wait after the 3rd failure in a row has a path of its own.

    Every wait, ordinary or not, is kept in ``_next``, which ``stop()`` cancels.
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self._slow: IDelayedCall | None = None

    def _failed(self, _: Failure) -> None:
        self.failures += 1
        if self.failures != SLOW_AFTER:
            self._later(delay_ms(self.failures))
            return
        log.warn("peer looks down after {n} failures; looking it up again", n=self.failures)
        self._slow_lane()

    def _slow_lane(self) -> None:
        self._later(delay_ms(self.failures))


class ForgottenSlowLaneClient(SlowLaneClient):
    """The same client, but the wait after the 3rd failure keeps its timer in a field of its own.

    BUG: that wait is scheduled in ``_slow``, which ``stop()`` does not know
    about (it cancels ``_next``): a stop while the client waits after its
    3rd failure in a row still connects once more. Caught by: ``time.after_stop``.
    """

    def _slow_lane(self) -> None:
        if self.running:
            self._slow = self.clock.callLater(delay_ms(self.failures) / 1000, self._attempt)


def _client(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", backoff_ms=backoff_range, description=description)


slow_lane_client = _client(SlowLaneClient, "reconnecting client whose wait after the 3rd failure in a row has a path of its own")
forgotten_slow_lane_client = _client(
    ForgottenSlowLaneClient, "reconnecting client whose stop() forgets the wait after the 3rd failure in a row"
)

SCENARIOS = (
    Scenario(
        "scenarios.slow_lane:slow_lane_client",
        "pass",
        "backoff 100, 200, 400, 800ms; the wait after the 3rd failure in a row has its own path; stop() cancels every wait",
        "callLater",
    ),
    Scenario(
        "scenarios.slow_lane:forgotten_slow_lane_client",
        "time.after_stop",
        "stop() forgets the wait after exactly the 3rd failure in a row: needs 3 failures, then a stop in that wait",
        "callLater",
    ),
)

"""Quota pollers: a poller that gives up on purpose and says so, and one that says so but polls on.

The promise both declare: the poll function (supplied by the harness) is
called every ``INTERVAL_MS`` on a ``task.LoopingCall``, never while the
previous poll runs; after ``GIVE_UP`` failed polls in a row the poller gives
up on purpose: it stops its loop and tells its owner through its own
``on_exhausted`` callback, which the target wires to the work's
``report_end``. ``time.loop_died`` takes that report as the loop's end (no
false alarm for an end on purpose), and ``time.after_end`` holds the poller to
it: no poll after the report. After ``stop()`` nothing is polled or left
scheduled.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

INTERVAL_MS = 100
#: Failed polls in a row after which the poller gives up.
GIVE_UP = 3


class QuotaPoller:
    """Polls every interval on a ``LoopingCall``; gives up after ``GIVE_UP`` failed polls in a row.

    A failed poll is counted (a success resets the count) and polling goes
    on: the poll is wrapped, so ``LoopingCall`` never sees the failure and
    keeps its schedule. At the ``GIVE_UP``-th failure in a row the poller
    stops its loop, then calls ``on_exhausted`` (the owner's callback; the
    target passes the work's ``report_end``). ``stop()`` stops the loop.
    """

    def __init__(self, clock: IReactorTime, poll: Callable[[], Any], on_exhausted: Callable[[str], None]) -> None:
        self.clock = clock
        self._poll = poll
        self._on_exhausted = on_exhausted
        self.failures = 0
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        self._loop.start(INTERVAL_MS / 1000, now=True).addErrback(lambda failure: None)  # _tick never fails

    def _tick(self) -> Any:
        return defer.maybeDeferred(self._poll).addCallbacks(self._polled, self._failed)

    def _polled(self, _: Any) -> None:
        self.failures = 0

    def _failed(self, failure: Failure) -> None:
        self.failures += 1
        if self.failures >= GIVE_UP:
            self._give_up()

    def _give_up(self) -> None:
        if self._loop.running:
            self._loop.stop()
        self._on_exhausted(f"{GIVE_UP} polls failed in a row")

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


class RunawayQuotaPoller(QuotaPoller):
    """Gives up by telling its owner, and forgets to stop polling.

    BUG: ``_give_up`` calls ``on_exhausted`` but leaves the ``LoopingCall``
    running: the owner is told the poller has ended, and the polls go on
    (each later failure reports again). Caught by: ``time.after_end``.
    """

    def _give_up(self) -> None:
        self._on_exhausted(f"{GIVE_UP} polls failed in a row")  # the loop is not stopped


def _reporting(cls: type[QuotaPoller], description: str) -> Target:
    def build(clock: IReactorTime, work: Any) -> QuotaPoller:
        return cls(clock, work, on_exhausted=work.report_end)

    build.__doc__ = cls.__doc__
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description)


quota_poller = _reporting(QuotaPoller, "poller that gives up after 3 failed polls in a row and reports it (work.report_end)")
runaway_quota_poller = _reporting(RunawayQuotaPoller, "poller that reports giving up and keeps polling")

SCENARIOS = (
    Scenario(
        "scenarios.quota_poller:quota_poller",
        "pass",
        "polls every 100ms; after 3 failed polls in a row stops and reports its end through work.report_end",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.quota_poller:runaway_quota_poller",
        "time.after_end",
        "reports giving up after 3 failed polls but leaves its LoopingCall running: the polls go on",
        "LoopingCall",
    ),
)

"""Hedged requests with a caller deadline: ``hedge_ms`` and ``timeout_ms`` declared together.

The promise (``hedge_ms=100, hedges=2, timeout_ms=300``): the subject calls
the job at once and again every 100 ms while no copy has succeeded, up to two
copies beyond the first; the first success wins and the other copies are
cancelled then. The request as a whole is bounded: 300 ms after its first
copy started, a caller still waiting fails with ``TimeoutError`` and every
copy still running is cancelled in that instant. The timeout is the
request's, not each copy's: a copy started 100 ms in is cancelled at 300 ms,
200 ms after it started. Each twin gets the deadline wrong in one way.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .hedge import HEDGE_MS, HEDGES, HedgedCallerKeepsLosers, HedgedRequest, HedgedRequestStaleTimer, _Race
from .review.round3.hedge import HedgedCaller

TIMEOUT_MS = 300


class DeadlineHedgedRequest(HedgedRequest):
    """``HedgedRequest`` whose caller's Deferred is bounded by ``addTimeout(0.3)``: at the deadline it is
    cancelled, which stops the hedge timer and cancels every copy, and fails with ``TimeoutError``."""

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return super().submit(job).addTimeout(TIMEOUT_MS / 1000, self.clock)


class NoDeadlineHedgedRequest(HedgedRequest):
    """A hedged request declaring a 300 ms deadline it never sets.

    BUG: the ``addTimeout`` was left out: copies that hang keep the caller
    waiting for ever. Caught by: ``time.timeout``.
    """


class OrphaningDeadlineHedgedRequest(HedgedRequest):
    """A hedged request whose deadline fails the caller but leaves the copies running.

    BUG: the deadline is a ``callLater`` that errbacks the caller's Deferred
    with ``TimeoutError`` (a race lost later is dropped), but it never
    cancels the copies still out: they run on for nobody. Caught by:
    ``time.timeout`` (or ``time.hedge_losers``: losers left running once the caller had its answer).
    """

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        race = _Race(self, job)
        race.launch()
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: race.caller.cancel())
        timer = self.clock.callLater(TIMEOUT_MS / 1000, self._expire, race, caller)

        def answered(outcome: Any) -> Any:
            if timer.active():
                timer.cancel()
            if not caller.called:
                caller.callback(outcome) if not isinstance(outcome, Failure) else caller.errback(outcome)
            return None

        race.caller.addBoth(answered)
        return caller

    def _expire(self, race: _Race, caller: defer.Deferred[Any]) -> None:
        race.stop_timer()  # no more copies; those out are forgotten, not cancelled
        race.cancelled = True
        if not caller.called:
            caller.errback(defer.TimeoutError("request timed out"))


class PerCopyDeadlineHedgedRequest(HedgedRequest):
    """A hedged request bounding each copy by its own 300 ms timeout, not the request.

    BUG: each copy gets ``addTimeout(0.3)`` from its own start; a timed-out
    copy is a failed one, so the caller waits for the last copy to time out
    (up to 200 ms more) instead of failing 300 ms after the request started.
    Caught by: ``time.timeout``.
    """

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def bounded() -> defer.Deferred[Any]:
            return defer.maybeDeferred(job).addTimeout(TIMEOUT_MS / 1000, self.clock)

        return super().submit(bounded)


class SupersedingHedgedRequest(DeadlineHedgedRequest):
    """A deadline hedged request that cancels the copy out when it sends the next ("the new one supersedes it").

    BUG: hedging runs the copies beside each other; this one keeps a single
    copy, cancelling it at each hedge while the caller still waits, long
    before the request's deadline. Caught by: ``time.timeout``.
    """

    def rearm(self, race: _Race) -> None:
        if self.may_send(race):
            race.timer = self.clock.callLater(self.hedge, self._supersede, race)

    def _supersede(self, race: _Race) -> None:
        race.timer = None
        for copy in list(race.copies):
            copy.cancel()  # its failure, with no copy left out, sends the next one at once (replace)


class DeadlineStaleTimer(HedgedRequestStaleTimer):
    """The stale-timer hedger (``scenarios.hedge``) with the request deadline: a failed copy is replaced at
    once but the old hedge timer is kept.

    BUG: the next copy comes less than ``hedge_ms`` after the replacement.
    Caught by: ``time.hedge_early`` (the deadline changes nothing about it).
    """

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return super().submit(job).addTimeout(TIMEOUT_MS / 1000, self.clock)


class DeadlineHedgedCaller(HedgedCaller):
    """The round-3 hedger (one hedge, the first outcome wins) with the request deadline on its caller."""

    def call(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return super().call(job).addTimeout(TIMEOUT_MS / 1000, self.clock)


class DeadlineKeepsLosers(HedgedCallerKeepsLosers):
    """The round-3 hedger that leaves its losing copy running, with the request deadline on its caller.

    BUG: when the first outcome comes, the other copy is dropped rather than
    cancelled. Caught by: ``time.hedge_losers`` (an answered request owes no
    timeout: the copy left running is a loser, not a missed timeout).
    """

    def call(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return super().call(job).addTimeout(TIMEOUT_MS / 1000, self.clock)


def _deadline(cls: type, description: str) -> Target:
    return Target(build=cls, hedge_ms=HEDGE_MS, hedges=HEDGES, timeout_ms=TIMEOUT_MS, description=description)


def _deadline_round3(cls: type, description: str) -> Target:
    return Target(build=cls, submit=lambda subject, job, priority: subject.call(job), hedge_ms=HEDGE_MS,
                  timeout_ms=TIMEOUT_MS, description=description)


deadline_hedged_request = _deadline(DeadlineHedgedRequest, "hedged request, 2 copies 100ms apart, the request times out at 300ms")
no_deadline_hedged_request = _deadline(NoDeadlineHedgedRequest, "hedged request declaring a 300ms deadline it never sets")
orphaning_deadline_hedged_request = _deadline(
    OrphaningDeadlineHedgedRequest, "hedged request whose deadline fails the caller and leaves the copies running")
per_copy_deadline_hedged_request = _deadline(
    PerCopyDeadlineHedgedRequest, "hedged request timing out each copy from its own start, not the request")
superseding_hedged_request = _deadline(
    SupersedingHedgedRequest, "deadline hedged request cancelling the copy out at each hedge")
deadline_stale_timer = _deadline(DeadlineStaleTimer, "deadline hedged request keeping a stale hedge timer")
deadline_hedged_call = _deadline_round3(DeadlineHedgedCaller, "round-3 hedged call (first outcome wins) with a 300ms deadline")
deadline_keeps_losers = _deadline_round3(DeadlineKeepsLosers, "round-3 hedged call with a deadline, leaving its loser running")

SCENARIOS = (
    Scenario("scenarios.hedge_deadline:deadline_hedged_request", "pass",
             "hedged request bounded by a 300ms request deadline (addTimeout on the caller's Deferred)",
             "callLater, Deferred.addTimeout"),
    Scenario("scenarios.hedge_deadline:deadline_hedged_call", "pass",
             "round-3 hedged call (first outcome wins) bounded by a 300ms request deadline",
             "callLater, Deferred.addTimeout"),
    Scenario("scenarios.hedge_deadline:no_deadline_hedged_request", "time.timeout",
             "the deadline is declared but never set: hanging copies keep the caller waiting", "callLater"),
    Scenario("scenarios.hedge_deadline:orphaning_deadline_hedged_request", "time.timeout",
             "the deadline fails the caller but leaves the copies running", "callLater",
             # the copies left running once the caller had its (timeout) answer are losers left running too
             also=("time.hedge_losers",)),
    Scenario("scenarios.hedge_deadline:per_copy_deadline_hedged_request", "time.timeout",
             "each copy times out from its own start: the caller fails up to 200ms after the request's deadline",
             "Deferred.addTimeout"),
    Scenario("scenarios.hedge_deadline:superseding_hedged_request", "time.timeout",
             "each hedge cancels the copy out while the caller still waits, before the request's deadline",
             "callLater, Deferred.addTimeout"),
    Scenario("scenarios.hedge_deadline:deadline_stale_timer", "time.hedge_early",
             "a failed copy is replaced at once but the old hedge timer is kept (with a request deadline)",
             "callLater, Deferred.addTimeout"),
    Scenario("scenarios.hedge_deadline:deadline_keeps_losers", "time.hedge_losers",
             "the first outcome leaves the other copy running (with a request deadline)",
             "callLater, Deferred.addTimeout"),
)

"""Hedged requests: a second (third...) copy of a request that has not answered in time, first answer wins.

The promise every target here declares with ``hedge_ms`` (and ``hedges``):
the subject calls the job at once and, while its caller still waits and no
copy has succeeded, calls it again ``HEDGE_MS`` after the latest copy
started, up to ``hedges`` copies beyond the first; the caller gets the first
answer, and every copy still running then is cancelled in that instant.
Cancelling the caller's Deferred cancels every copy.

Two correct hedgers: the outside user's from review round 3 (one hedge; the
first outcome, result or error, wins) and ``HedgedRequest`` (several hedges;
the first *success* wins, a failed copy is replaced at once, the caller
fails only when every copy it may send has failed). Each twin has one bug.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .review.round3.hedge import HedgedCaller, _cancel_each

HEDGE_MS = 100
#: How many copies beyond the first ``HedgedRequest`` may send.
HEDGES = 2


class HedgedCallerUnits(HedgedCaller):
    """The round-3 hedger configured in milliseconds.

    BUG: the delay is taken in milliseconds and handed to ``callLater``,
    which counts seconds: the hedge comes after 100 s instead of 100 ms, so
    a slow request is in practice never hedged. Caught by: ``time.hedge_late``.
    """

    def __init__(self, clock: Any, hedge_ms: int = HEDGE_MS) -> None:
        super().__init__(clock, hedge_after=hedge_ms)  # should be hedge_ms / 1000


class HedgedCallerKeepsLosers(HedgedCaller):
    """The round-3 hedger whose win handler stops the hedge timer but forgets the copies.

    BUG: when the first outcome comes, the other copy is dropped (its outcome
    ignored) rather than cancelled: it runs on, for nobody, holding whatever
    the backend gave it. Caught by: ``time.hedge_losers``.
    """

    def _won(self, timer: Any, copies: list[defer.Deferred]) -> None:
        if timer.active():
            timer.cancel()


class HedgedRequest:
    """Hedges a request up to ``hedges`` times; the first success wins.

    ``submit(job)`` calls ``job()`` at once and again every ``hedge_ms`` (timed
    from the latest copy) while no copy has succeeded, up to ``hedges``
    copies beyond the first. A copy that fails is not the answer while
    another copy runs; if none runs, it is replaced at once (while copies
    remain), else the caller fails with that failure. The first success is
    the caller's result, and the copies still out are cancelled right after
    it fired. Cancelling the caller's Deferred cancels the hedge timer and
    every copy.
    """

    def __init__(self, clock: IReactorTime, hedge_ms: int = HEDGE_MS, hedges: int = HEDGES) -> None:
        self.clock = clock
        self.hedge = hedge_ms / 1000
        self.most = hedges + 1

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        race = _Race(self, job)
        race.launch()
        return race.caller

    def may_send(self, race: _Race) -> bool:
        """Whether another copy may be sent: fewer than ``hedges + 1`` went out."""
        return race.sent < self.most

    def rearm(self, race: _Race) -> None:
        """Arm the timer for the next copy, if another may be sent."""
        if self.may_send(race):
            race.timer = self.clock.callLater(self.hedge, race.launch)

    def replace(self, race: _Race) -> None:
        """A copy failed and none is out: send the next one at once (its own timer restarts)."""
        race.stop_timer()
        race.launch()


class _Race:
    """One request's copies, its hedge timer and its caller."""

    def __init__(self, owner: HedgedRequest, job: Callable[[], Any]) -> None:
        self.owner = owner
        self.job = job
        self.copies: list[defer.Deferred[Any]] = []
        self.sent = 0
        self.timer: IDelayedCall | None = None
        self.cancelled = False
        self.caller: defer.Deferred[Any] = defer.Deferred(self._cancel)

    def launch(self) -> None:
        self.timer = None
        if not self.owner.may_send(self):
            return
        self.send()
        if not self.caller.called and not self.cancelled and self.timer is None:
            self.owner.rearm(self)

    def send(self) -> None:
        self.sent += 1
        copy = defer.maybeDeferred(self.job)
        self.copies.append(copy)
        copy.addBoth(self._settle, copy)

    def stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _settle(self, outcome: Any, copy: defer.Deferred[Any]) -> None:
        if copy in self.copies:
            self.copies.remove(copy)
        if self.caller.called or self.cancelled:
            return None  # a loser, cancelled or late: dropped
        if isinstance(outcome, Failure):
            if self.copies:
                return None  # another copy is still racing
            if self.owner.may_send(self):
                self.owner.replace(self)
                return None
        self._finish(outcome)
        return None

    def _finish(self, outcome: Any) -> None:
        self.stop_timer()
        losers, self.copies = self.copies, []
        if isinstance(outcome, Failure):
            self.caller.errback(outcome)
        else:
            self.caller.callback(outcome)
        _cancel_each(losers)

    def _cancel(self, _: defer.Deferred[Any]) -> None:
        self.cancelled = True
        self.stop_timer()
        losers, self.copies = self.copies, []
        _cancel_each(losers)


class HedgedRequestStaleTimer(HedgedRequest):
    """A hedger that replaces a failed copy at once but keeps the old hedge timer.

    BUG: when the only copy out fails, the next one is sent at once, but the
    timer armed for the failed copy is left as it was: it fires on the old
    schedule and sends a further copy less than ``hedge_ms`` after the
    replacement, while the replacement still runs. Caught by: ``time.hedge_early``.
    """

    def replace(self, race: _Race) -> None:
        race.send()  # should restart the timer: race.stop_timer(); race.launch()
        if race.timer is None and not race.caller.called:
            self.rearm(race)


class HedgedRequestOneTooMany(HedgedRequest):
    """A hedger whose test for one more copy is off by one.

    BUG: ``may_send`` compares the copies sent with ``hedges + 1`` by ``<=``
    where ``<`` was meant, so a request that keeps not answering gets one
    copy more than promised. Caught by: ``time.hedge_count``.
    """

    def may_send(self, race: _Race) -> bool:
        return race.sent <= self.most  # should be <


def _round3(cls: type) -> Target:
    return Target(
        build=cls,  # HedgedCaller's default delay is 0.1 s: HEDGE_MS
        submit=lambda subject, job, priority: subject.call(job),
        hedge_ms=HEDGE_MS,
        description=f"hedged request ({cls.__name__}): one copy after {HEDGE_MS}ms, first outcome wins",
    )


def _hedged(cls: type) -> Target:
    return Target(
        build=cls,
        hedge_ms=HEDGE_MS,
        hedges=HEDGES,
        description=f"hedged request ({cls.__name__}): up to {HEDGES} copies {HEDGE_MS}ms apart, first success wins",
    )


hedged_call = _round3(HedgedCaller)
hedged_call_units = _round3(HedgedCallerUnits)
hedged_call_keeps_losers = _round3(HedgedCallerKeepsLosers)
hedged_request = _hedged(HedgedRequest)
hedged_request_stale_timer = _hedged(HedgedRequestStaleTimer)
hedged_request_one_too_many = _hedged(HedgedRequestOneTooMany)

SCENARIOS = (
    Scenario(
        "scenarios.hedge:hedged_call",
        "pass",
        "hedged request (review round 3): a second copy after 100 ms, the first outcome wins, the other is cancelled",
        "callLater",
    ),
    Scenario(
        "scenarios.hedge:hedged_request",
        "pass",
        "hedged request: up to 2 copies 100 ms apart, the first success wins, a failed copy is replaced at once",
        "callLater",
    ),
    Scenario(
        "scenarios.hedge:hedged_call_units",
        "time.hedge_late",
        "hedge delay given in ms to callLater, which counts seconds: the copy comes 1000 times too late",
        "callLater",
    ),
    Scenario(
        "scenarios.hedge:hedged_call_keeps_losers",
        "time.hedge_losers",
        "the first outcome stops the hedge timer but leaves the other copy running",
        "callLater",
    ),
    Scenario(
        "scenarios.hedge:hedged_request_stale_timer",
        "time.hedge_early",
        "a failed copy is replaced at once but the old hedge timer is kept: the next copy comes too soon",
        "callLater",
    ),
    Scenario(
        "scenarios.hedge:hedged_request_one_too_many",
        "time.hedge_count",
        "the hedge count is compared with <= instead of <: one copy more than promised",
        "callLater",
    ),
)

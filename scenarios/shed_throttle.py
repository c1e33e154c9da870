"""A throttle that sheds callers who waited too long, assuming the oldest waiter always expires first.

The promise: at most one job starts per ``PERIOD_MS`` (a start takes the
permit, which comes back ``PERIOD_MS`` later), in submission order; a caller
still waiting ``SHED_MS`` after it submitted fails with ``QueueTimeout``
(declared in ``rejects``) and its job never runs; cancelling a waiting caller
takes it out of the queue, cancelling a running one cancels its job.

Every waiter's shed timer is armed ``SHED_MS`` after its submission, so the
timers fall due in submission order, and a throttle may take the shortcut of
dropping the head of the queue when one fires. The shortcut fails only when
three calls are due in the same instant and run in one order out of six:
two waiters submitted together (their shed timers tie) and the permit coming
back in that very instant, run as the later waiter's shed timer, then the
permit, then the earlier waiter's shed timer. Neither of the orders a real
reactor is likeliest to use (creation order, or its reverse) does it: a
depth-3 ordering of same-instant calls, reached only when the permit's
return lines up with the shedding, which takes a particular history of
starts. Uniform random search needs hundreds to thousands of examples.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

#: A start takes the one permit; it comes back this long after.
PERIOD_MS = 100
#: A caller still waiting this long after it submitted is shed.
SHED_MS = 250


class QueueTimeout(Exception):
    """The caller waited ``SHED_MS`` for the throttle and was shed: its job never ran."""


class _Waiter:
    """One submission: the job, the caller's Deferred, its shed timer, its job's Deferred once started."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] | None = None
        self.shed: IDelayedCall | None = None
        self.running: defer.Deferred[Any] | None = None


class SheddingThrottle:
    """One start per ``PERIOD_MS``, FIFO; a waiter is shed ``SHED_MS`` after it submitted.

    A shed timer takes its own waiter out of the queue, wherever it is.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.permits = 1
        self.waiting: deque[_Waiter] = deque()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        waiter = _Waiter(job)
        waiter.caller = defer.Deferred(lambda d: self._cancel(waiter))
        self.waiting.append(waiter)
        self._pump()
        if waiter.running is None:
            waiter.shed = self.clock.callLater(SHED_MS / 1000, self._shed, waiter)
        return waiter.caller

    def _pump(self) -> None:
        while self.permits and self.waiting:
            self.permits -= 1
            self.clock.callLater(PERIOD_MS / 1000, self._permit_back)
            self._start(self.waiting.popleft())

    def _start(self, waiter: _Waiter) -> None:
        if waiter.shed is not None and waiter.shed.active():
            waiter.shed.cancel()
        waiter.running = defer.maybeDeferred(waiter.job)
        waiter.running.addBoth(self._deliver, waiter)

    @staticmethod
    def _deliver(outcome: Any, waiter: _Waiter) -> None:
        assert waiter.caller is not None
        if not waiter.caller.called:  # defensive: a caller is answered once
            waiter.caller.callback(outcome) if not isinstance(outcome, Failure) else waiter.caller.errback(outcome)

    def _permit_back(self) -> None:
        self.permits += 1
        self._pump()

    def _shed(self, waiter: _Waiter) -> None:
        assert waiter.caller is not None
        self._drop(waiter)
        waiter.caller.errback(QueueTimeout(f"no start within {SHED_MS}ms"))

    def _drop(self, waiter: _Waiter) -> None:
        self.waiting.remove(waiter)

    def _cancel(self, waiter: _Waiter) -> None:
        if waiter.running is not None:
            waiter.running.cancel()
            return
        if waiter.shed is not None and waiter.shed.active():
            waiter.shed.cancel()
        if waiter in self.waiting:
            self.waiting.remove(waiter)  # the caller's Deferred then fails with CancelledError


class HeadDroppingThrottle(SheddingThrottle):
    """The same throttle, but a shed timer drops the head of the queue: "the oldest waiter expires first".

    BUG: ``_drop`` pops the head of the queue instead of removing its own
    waiter. Timers due in submission order make that the same thing, except
    for waiters submitted in the same instant, whose shed timers tie. When
    the second one's timer runs first it drops the first waiter and fails the
    second; if the permit comes back next it starts the second waiter's job
    (its caller already failed with ``QueueTimeout``) while the first one,
    submitted earlier, is still waiting to be shed: the throttle started a
    shed caller's job, out of order. Caught by: ``concurrency.fifo``.
    """

    def _drop(self, waiter: _Waiter) -> None:
        self.waiting.popleft()


def _throttle(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, order="fifo", rejects=(QueueTimeout,), description=description)


shedding_throttle = _throttle(SheddingThrottle, "one start per 100ms, FIFO; callers waiting 250ms are shed")
head_dropping_throttle = _throttle(
    HeadDroppingThrottle, "one start per 100ms; a shed timer drops the head of the queue, not its own caller"
)

SCENARIOS = (
    Scenario(
        "scenarios.shed_throttle:shedding_throttle",
        "pass",
        "one start per 100ms, FIFO; a caller waiting 250ms fails with QueueTimeout (declared in rejects)",
        "callLater",
    ),
    Scenario(
        "scenarios.shed_throttle:head_dropping_throttle",
        "concurrency.fifo",
        "two shed timers and the permit due in one instant, run as 2nd shed, permit, 1st shed: a shed job starts, out of order",
        "callLater",
    ),
)

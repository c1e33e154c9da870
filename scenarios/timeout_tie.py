"""Per-call timeouts whose failures are delivered on the next tick: a tie with the timer fires the caller twice.

The promise: each job starts at once; its caller gets the job's outcome, or
``TimeoutError`` if the job has not finished ``TIMEOUT_MS`` after it started
(the job is then cancelled); cancelling the caller cancels the job. A
hand-rolled timeout may deliver a job's *failure* through ``callLater(0,
...)`` so that the caller's errbacks never run inside the failing job's
stack, and cancel the timer only then. Between the job's failure and that
delivery the timer may still fire. The window is narrow: the job must fail
(not succeed) in the same instant as its timer fires, or a stalled reactor
must wake once for both, with the failure due first; only then does the
timer run between the failure and its delivery tick. On a punctual reactor
that takes an exact tie; a reactor stalled for 1 s or 5 s (``step_ms``)
wakes once for both, so the default search finds it within tens of
examples: a window rare in production, not for the search.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

TIMEOUT_MS = 300


class _Call:
    """One submission: the caller's Deferred, the job's own Deferred, the timeout timer."""

    def __init__(self) -> None:
        self.caller: defer.Deferred[Any] | None = None
        self.running: defer.Deferred[Any] | None = None
        self.timer: IDelayedCall | None = None
        self.cancelled = False


class NextTickTimeouts:
    """Runs each job at once under a ``TIMEOUT_MS`` timer; a result goes to the caller at once, a failure on the next tick.

    The delayed delivery drops a failure whose caller has already been
    answered (timed out in the same instant, or cancelled), so each caller
    fires once.
    """

    def __init__(self, clock: IReactorTime, timeout_ms: int = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        call = _Call()
        call.caller = defer.Deferred(lambda d: self._cancel(call))
        call.timer = self.clock.callLater(self.timeout, self._expire, call)
        call.running = defer.maybeDeferred(job)
        call.running.addBoth(self._finished, call)
        return call.caller

    def _finished(self, result: Any, call: _Call) -> None:
        assert call.caller is not None and call.timer is not None
        if not call.timer.active():
            return None  # timed out or cancelled: the caller has its answer
        if isinstance(result, Failure):
            self.clock.callLater(0, self._deliver, call, result)  # errbacks outside the job's stack
        else:
            call.timer.cancel()
            call.caller.callback(result)
        return None

    def _deliver(self, call: _Call, failure: Failure) -> None:
        assert call.caller is not None and call.timer is not None
        if call.timer.active():
            call.timer.cancel()
        if call.caller.called:
            return  # the timer fired between the failure and this tick: already answered
        call.caller.errback(failure)

    def _expire(self, call: _Call) -> None:
        assert call.caller is not None and call.running is not None
        call.caller.errback(defer.TimeoutError(f"job did not finish within {self.timeout}s"))
        call.running.cancel()

    def _cancel(self, call: _Call) -> None:
        assert call.running is not None and call.timer is not None
        call.cancelled = True
        if call.timer.active():
            call.timer.cancel()
        call.running.cancel()


class DoubleFireTimeouts(NextTickTimeouts):
    """The same timeouts, but the delayed delivery looks for a cancel only, not for the timer.

    BUG: ``_deliver`` drops the failure of a cancelled call but does not
    look whether the timer fired between the job's failure and the delivery
    tick. When a job fails
    in the same instant as its timer fires, failure first, the caller gets
    ``TimeoutError`` and then the job's failure. Caught by: ``completion.once``.
    """

    def _deliver(self, call: _Call, failure: Failure) -> None:
        assert call.caller is not None and call.timer is not None
        if call.timer.active():
            call.timer.cancel()
        if call.cancelled:
            return  # the caller already has its CancelledError
        call.caller.errback(failure)


def _timed(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, timeout_ms=TIMEOUT_MS, timeout_fires=True, description=description)


next_tick_timeouts = _timed(NextTickTimeouts, "300ms per-call timeout; a failure goes to the caller by callLater(0)")
double_fire_timeouts = _timed(
    DoubleFireTimeouts, "300ms per-call timeout whose callLater(0) failure delivery fails a caller the timer already failed"
)

SCENARIOS = (
    Scenario(
        "scenarios.timeout_tie:next_tick_timeouts",
        "pass",
        "each job times out at 300ms; a failure is delivered by callLater(0), dropped if the timer fired first",
        "callLater",
    ),
    Scenario(
        "scenarios.timeout_tie:double_fire_timeouts",
        "completion.once",
        "a job failing in the same instant as its timer fires: the caller gets TimeoutError, then the failure",
        "callLater",
    ),
)

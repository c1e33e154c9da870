"""Quorum calls: a job called on N replicas at once, answered once K of them succeeded.

The promise every target here declares with ``fanout=FANOUT, quorum=QUORUM``
(and the overall timeout, ``timeout_ms`` from submission): the subject calls
the job FANOUT times together, answers the caller with the values of the
first QUORUM copies to succeed as soon as they have, fails it as soon as
QUORUM successes are impossible (with the first copy error: any copy's
error is a legitimate answer), or with ``TimeoutError`` at the timeout, and
cancels the copies still running in the instant of its answer. Cancelling
the caller's Deferred cancels every copy.

One correct quorum call (``QuorumRead``: closures over the copies, the
timeout by ``Deferred.addTimeout`` on the caller's Deferred, whose canceller
cancels the copies; the round-5 outside user's ``QuorumCall``, with its own
timer, is ``scenarios.review.round5.targets:quorum_ok``) and a twin for each
quorum invariant.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

FANOUT = 4
QUORUM = 3
TIMEOUT_MS = 400


class QuorumRead:
    """Reads a job from FANOUT replicas at once; the first QUORUM values win."""

    fanout = FANOUT
    quorum = QUORUM
    #: The overall timeout, in seconds (None: none).
    timeout: float | None = TIMEOUT_MS / 1000

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        copies: list[defer.Deferred] = []
        values: list[Any] = []
        errors: list[Failure] = []

        closing: list[bool] = []

        def cancel_copies(_: Any = None) -> None:
            closing.append(True)  # the copies' ends from here on are the losers' (or the caller's cancel's)
            for copy in list(copies):
                try:
                    copy.cancel()
                except Exception:
                    pass  # a copy whose canceller raised must not spare the others

        caller: defer.Deferred = defer.Deferred(cancel_copies)

        def settle(outcome: Any, copy: defer.Deferred) -> None:
            copies.remove(copy)
            if caller.called or closing:
                return None  # a loser's end (its cancel included): absorbed
            if isinstance(outcome, Failure):
                errors.append(outcome)
            else:
                values.append(outcome)
            answer = self._decide(values, errors)
            if answer is not None:
                cancel_copies()  # the losers first, then the answer
                caller.callback(answer) if not isinstance(answer, Failure) else caller.errback(answer)
            return None

        self._launch(job, copies, settle, caller)
        if self.timeout is not None:
            caller.addTimeout(self.timeout, self.clock)  # cancels the caller: its canceller cancels the copies
        return caller

    def _launch(self, job: Callable[[], Any], copies: list[defer.Deferred], settle: Any, caller: defer.Deferred) -> None:
        for _ in range(self.fanout):
            if caller.called:
                break  # decided while the copies were being made (they answered at once)
            copy = defer.maybeDeferred(job)
            copies.append(copy)
            copy.addBoth(settle, copy)

    def _decide(self, values: list[Any], errors: list[Failure]) -> Any:
        """The caller's answer once decided (the values, or the first error), else None."""
        if len(values) >= self.quorum:
            return values[: self.quorum]
        if len(errors) > self.fanout - self.quorum:
            return errors[0]
        return None


class QuorumReadWaitsForAll(QuorumRead):
    """BUG: decides only once every copy has ended (a ``DeferredList`` habit): a quorum reached early is
    answered late, at the slowest replica, or at the timeout when one hangs. Caught by: ``time.quorum_late``."""

    def _decide(self, values: list[Any], errors: list[Failure]) -> Any:
        if len(values) + len(errors) < self.fanout:
            return None
        return super()._decide(values, errors)


class QuorumReadOffByOne(QuorumRead):
    """BUG: the success count is compared with ``>= quorum - 1``: a value goes out one success too soon.
    Caught by: ``time.quorum_early``."""

    def _decide(self, values: list[Any], errors: list[Failure]) -> Any:
        if len(values) >= self.quorum - 1:
            return values
        return super()._decide(values, errors)


class QuorumReadKeepsLosers(QuorumRead):
    """BUG: the win handler answers but forgets the copies still running: they run on, for nobody.
    Caught by: ``time.fanout_losers``. (Without the overall timeout: a loser left running past it would be
    ``time.timeout``'s too.)"""

    timeout = None

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        copies: list[defer.Deferred] = []
        values: list[Any] = []
        errors: list[Failure] = []
        closing: list[bool] = []

        def cancel_copies(_: Any) -> None:
            closing.append(True)
            for copy in list(copies):
                copy.cancel()

        caller: defer.Deferred = defer.Deferred(cancel_copies)

        def settle(outcome: Any, copy: defer.Deferred) -> None:
            copies.remove(copy)
            if caller.called or closing:
                return None
            (errors if isinstance(outcome, Failure) else values).append(outcome)
            answer = self._decide(values, errors)
            if answer is not None:
                caller.callback(answer) if not isinstance(answer, Failure) else caller.errback(answer)
            return None

        self._launch(job, copies, settle, caller)
        return caller


class QuorumReadOneTooMany(QuorumRead):
    """BUG: ``range(self.fanout + 1)`` after a refactor: one replica more than promised is called.
    Caught by: ``time.fanout_count``."""

    fanout = FANOUT + 1

    def _decide(self, values: list[Any], errors: list[Failure]) -> Any:
        if len(values) >= self.quorum:
            return values[: self.quorum]
        if len(errors) > FANOUT - self.quorum:
            return errors[0]
        return None


class QuorumReadLazySpares(QuorumRead):
    """BUG: calls QUORUM replicas, and a spare only after one failed, to spare the backend: a slow
    replica is never raced, and a failure costs a round trip. Caught by: ``time.fanout_together``."""

    def _launch(self, job: Callable[[], Any], copies: list[defer.Deferred], settle: Any, caller: defer.Deferred) -> None:
        started = [0]

        def one() -> None:
            started[0] += 1
            copy = defer.maybeDeferred(job)
            copies.append(copy)
            copy.addBoth(spare, copy)

        def spare(outcome: Any, copy: defer.Deferred) -> None:
            settle(outcome, copy)
            cancelled = isinstance(outcome, Failure) and outcome.check(defer.CancelledError)
            if isinstance(outcome, Failure) and not cancelled and not caller.called and started[0] < self.fanout:
                one()
            return None

        for _ in range(self.quorum):
            if caller.called:
                break
            one()


def _quorum(cls: type[QuorumRead]) -> Target:
    description = (cls.__doc__ or "").split("\n")[0]
    if cls.timeout is None:
        return Target(build=cls, fanout=FANOUT, quorum=QUORUM, description=description)
    return Target(build=cls, fanout=FANOUT, quorum=QUORUM, timeout_ms=TIMEOUT_MS, timeout_from="submit",
                  description=description)


quorum_read = _quorum(QuorumRead)
quorum_read_waits_for_all = _quorum(QuorumReadWaitsForAll)
quorum_read_off_by_one = _quorum(QuorumReadOffByOne)
quorum_read_keeps_losers = _quorum(QuorumReadKeepsLosers)
quorum_read_one_too_many = _quorum(QuorumReadOneTooMany)
quorum_read_lazy_spares = _quorum(QuorumReadLazySpares)

SCENARIOS = (
    Scenario(
        "scenarios.quorum:quorum_read",
        "pass",
        "quorum call: 4 replicas at once, the first 3 values win, fails once 3 are impossible or at 400 ms",
        "Deferred",
    ),
    Scenario(
        "scenarios.quorum:quorum_read_waits_for_all",
        "time.quorum_late",
        "decides only once every replica answered: a quorum reached early waits for the slowest",
        "Deferred",
    ),
    Scenario(
        "scenarios.quorum:quorum_read_off_by_one",
        "time.quorum_early",
        "success count compared with >= quorum - 1: the value goes out one success too soon",
        "Deferred",
    ),
    Scenario(
        "scenarios.quorum:quorum_read_keeps_losers",
        "time.fanout_losers",
        "answers but forgets the replicas still running: they run on for nobody",
        "Deferred",
    ),
    Scenario(
        "scenarios.quorum:quorum_read_one_too_many",
        "time.fanout_count",
        "range(fanout + 1): one replica more than promised is called",
        "Deferred",
    ),
    Scenario(
        "scenarios.quorum:quorum_read_lazy_spares",
        "time.fanout_together",
        "calls quorum replicas and a spare only after a failure: a slow replica is never raced",
        "Deferred",
    ),
)

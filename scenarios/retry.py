"""Retry with exponential backoff: a correct one on ``task.deferLater``, and three that get it wrong.

The promise every subject here declares: a failing job is retried at most
``RETRIES`` times, retry n waiting ``BASE_MS * 2 ** (n - 1)`` ms after the
failed attempt (the correct subject exactly, the jittered one within
±50 %); cancelling the caller's Deferred stops the loop and cancels the
running attempt; ``stop()`` cancels everything in flight.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

RETRIES = 3
BASE_MS = 100


def exponential(retry: int) -> tuple[float, float]:
    """The exact delay before retry ``retry`` (1-based): 100, 200, 400 ms."""
    delay = BASE_MS * 2 ** (retry - 1)
    return (delay, delay)


def jittered(retry: int) -> tuple[float, float]:
    """The delay before retry ``retry`` with ±50 % jitter around the exponential delay."""
    delay = BASE_MS * 2 ** (retry - 1)
    return (delay * 0.5, delay * 1.5)


class Stopped(Exception):
    """The subject was stopped: no new work is accepted."""


class BackoffRetry:
    """Retries a failing job with exponential backoff, the idiomatic way.

    An ``inlineCallbacks`` loop waits between attempts with
    ``task.deferLater(clock, ...)``. Cancelling the Deferred that ``submit``
    returned cancels whatever the loop is waiting on: the backoff delay (its
    DelayedCall is cancelled, so no further attempt starts) or the running
    attempt (the job's own Deferred is cancelled). ``CancelledError`` is never
    retried. ``stop()`` cancels every job in flight and refuses new ones.
    """

    def __init__(self, clock: IReactorTime, retries: int = RETRIES, base_ms: int = BASE_MS) -> None:
        self.clock = clock
        self.retries = retries
        self.base_ms = base_ms
        self._in_flight: dict[defer.Deferred[Any], None] = {}  # ordered: stop() cancels in submission order
        self._stopped = False

    def delay_ms(self, retry: int) -> float:
        return self.base_ms * 2 ** (retry - 1)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self._stopped:
            return defer.fail(Stopped("the retrier is stopped"))
        d = self._run(job)
        if not d.called:
            self._in_flight[d] = None
            d.addBoth(self._forget, d)
        return d

    def _forget(self, result: Any, d: defer.Deferred[Any]) -> Any:
        self._in_flight.pop(d, None)
        return result

    @defer.inlineCallbacks
    def _run(self, job: Callable[[], Any]) -> Any:
        for retry in range(self.retries + 1):
            if retry:
                yield task.deferLater(self.clock, self.delay_ms(retry) / 1000, lambda: None)
            try:
                result = yield defer.maybeDeferred(job)
            except defer.CancelledError:
                raise  # cancelled by the caller: never retried
            except Exception:
                if retry == self.retries:
                    raise
            else:
                return result

    def stop(self) -> None:
        self._stopped = True
        for d in list(self._in_flight):
            d.cancel()


class RetryAfterCancel:
    """A hand-rolled retry loop whose cancel misses the pending retry.

    BUG: the caller's canceller cancels ``entry.current``, the running
    attempt, and a cancelled attempt is not retried: right while an attempt
    runs. But during the backoff delay there is no running attempt:
    ``current`` is the attempt that already failed, cancelling it does
    nothing, and the retry's DelayedCall (kept only for ``stop()``) fires
    anyway and starts the job again after the caller was told it was
    cancelled; its result is then dropped, as the caller has already fired.
    Caught by: ``cancellation.no_start``.
    """

    def __init__(self, clock: IReactorTime, retries: int = RETRIES, base_ms: int = BASE_MS) -> None:
        self.clock = clock
        self.retries = retries
        self.base_ms = base_ms
        self._entries: dict[_RetryEntry, None] = {}
        self._stopped = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self._stopped:
            return defer.fail(Stopped("the retrier is stopped"))
        entry = _RetryEntry(job)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        self._entries[entry] = None
        entry.caller.addBoth(self._forget, entry)
        self._attempt(entry, 0)
        return entry.caller

    def _cancel(self, entry: _RetryEntry) -> None:
        if entry.current is not None:
            entry.current.cancel()  # BUG: the retry's DelayedCall (entry.timer) is left armed

    def _forget(self, result: Any, entry: _RetryEntry) -> Any:
        self._entries.pop(entry, None)
        return result

    def _attempt(self, entry: _RetryEntry, retry: int) -> None:
        entry.timer = None
        entry.current = defer.maybeDeferred(entry.job)
        entry.current.addCallbacks(self._succeeded, self._failed, callbackArgs=(entry,), errbackArgs=(entry, retry))

    def _succeeded(self, result: Any, entry: _RetryEntry) -> None:
        if not entry.caller.called:
            entry.caller.callback(result)

    def _failed(self, failure: Failure, entry: _RetryEntry, retry: int) -> None:
        if failure.check(defer.CancelledError) or entry.caller.called:
            return  # the caller cancelled the running attempt: give up
        if retry < self.retries:
            delay = self.base_ms * 2**retry / 1000
            entry.timer = self.clock.callLater(delay, self._attempt, entry, retry + 1)
        else:
            entry.caller.errback(failure)

    def stop(self) -> None:
        self._stopped = True
        for entry in list(self._entries):
            if entry.timer is not None and entry.timer.active():
                entry.timer.cancel()
            entry.caller.cancel()


class _RetryEntry:
    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] = defer.Deferred()
        self.current: defer.Deferred[Any] | None = None
        self.timer: IDelayedCall | None = None


class OffByOneRetry(BackoffRetry):
    """Compares the number of failures with the number of attempts.

    BUG: the loop allows ``max_attempts = retries + 1`` attempts but gives up
    only when ``failures > max_attempts``; after the last allowed attempt
    fails, ``failures == max_attempts`` and it retries once more. A job that
    keeps failing is attempted ``retries + 2`` times. Caught by: ``time.retries``.
    """

    @defer.inlineCallbacks
    def _run(self, job: Callable[[], Any]) -> Any:
        max_attempts = self.retries + 1
        failures = 0
        while True:
            try:
                result = yield defer.maybeDeferred(job)
            except defer.CancelledError:
                raise
            except Exception:
                failures += 1
                if failures > max_attempts:  # should be >=
                    raise
                yield task.deferLater(self.clock, self.delay_ms(failures) / 1000, lambda: None)
            else:
                return result


class GivesUpEarlyRetry(BackoffRetry):
    """Gives up one attempt too soon.

    BUG: the loop compares the failures with ``retries`` instead of ``retries + 1``: a job that keeps
    failing gets ``retries`` attempts, and its caller fails with the last error. ``retries`` promises
    only at most ``retries + 1``; declared ``gives_up_after_retries=True`` this is caught by
    ``time.gave_up_early``.
    """

    @defer.inlineCallbacks
    def _run(self, job: Callable[[], Any]) -> Any:
        failures = 0
        while True:
            try:
                result = yield defer.maybeDeferred(job)
            except defer.CancelledError:
                raise
            except Exception:
                failures += 1
                if failures >= self.retries:  # should be > retries
                    raise
                yield task.deferLater(self.clock, self.delay_ms(failures) / 1000, lambda: None)
            else:
                return result


class JitteryBackoff(BackoffRetry):
    """Adds jitter to the backoff, in absolute terms.

    BUG: the jitter is meant to be ±50 % of the exponential delay, but is
    drawn as ``uniform(-1, 1) * delay``: a retry can come almost at once
    (or, had it gone negative, ``callLater`` clamps it to 0), well under the
    declared lower bound, and also later than the upper one. The random
    generator is seeded so runs are reproducible. Caught by: ``time.backoff``.
    """

    def __init__(self, clock: IReactorTime, seed: int = 7) -> None:
        super().__init__(clock)
        self._random = random.Random(seed)

    def delay_ms(self, retry: int) -> float:
        delay = self.base_ms * 2 ** (retry - 1)
        return max(delay + self._random.uniform(-1, 1) * delay, 0)


backoff_retry = Target(
    build=BackoffRetry,
    retries=RETRIES,
    backoff_ms=exponential,
    description="retry with exponential backoff on task.deferLater and inlineCallbacks",
)

retry_after_cancel = Target(
    build=RetryAfterCancel,
    retries=RETRIES,
    backoff_ms=exponential,
    description="hand-rolled retry whose cancel misses the pending retry DelayedCall",
)

off_by_one_retry = Target(
    build=OffByOneRetry,
    retries=RETRIES,
    backoff_ms=exponential,
    description="retry loop that makes one retry more than declared",
)

gives_up_early_retry = Target(
    build=GivesUpEarlyRetry,
    retries=RETRIES,
    gives_up_after_retries=True,
    backoff_ms=exponential,
    description="retry loop that gives a failing job up after retries attempts, one too few",
)

jittery_backoff = Target(
    build=JitteryBackoff,
    retries=RETRIES,
    backoff_ms=jittered,
    description="retry whose ±50% jitter is drawn as ±100% of the delay",
)

SCENARIOS = (
    Scenario(
        "scenarios.retry:backoff_retry",
        "pass",
        "retry up to 3 times, 100/200/400 ms apart; cancel stops the loop and cancels the attempt",
        "task.deferLater",
    ),
    Scenario(
        "scenarios.retry:retry_after_cancel",
        "cancellation.no_start",
        "hand-rolled retry: a cancel during the backoff delay does not cancel the retry's DelayedCall",
        "callLater",
    ),
    Scenario(
        "scenarios.retry:off_by_one_retry",
        "time.retries",
        "retry loop counting attempts from 1 makes retries+1 retries",
        "task.deferLater",
    ),
    Scenario(
        "scenarios.retry:gives_up_early_retry",
        "time.gave_up_early",
        "retry loop giving a failing job up after retries attempts instead of retries + 1 (gives_up_after_retries)",
        "task.deferLater",
    ),
    Scenario(
        "scenarios.retry:jittery_backoff",
        "time.backoff",
        "backoff jitter drawn as ±100% of the delay instead of ±50%: retries come too soon or too late",
        "task.deferLater",
    ),
)

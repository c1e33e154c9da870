"""A hand-rolled retrier whose wait before the last retry has a path of its own: cancel and stop must still reach it.

The promise is the retrier's (``scenarios.retry``): a failing job is retried
at most ``RETRIES`` times, retry n waiting ``BASE_MS * 2 ** (n - 1)`` ms
after the failed attempt; cancelling the caller's Deferred stops the loop
(no attempt starts after it) and cancels the running attempt; ``stop()``
cancels everything in flight. Before the last retry, after the 3rd failure
in a row, this retrier logs that it gives the job one more try. That wait
is where a bug can hide: it is reached only by a job that fails three times
in a row (each attempt drawing a failing behaviour), and shows only if the
caller cancels, or the retrier is stopped, during that one wait of 400 ms.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .retry import RETRIES, RetryAfterCancel, _RetryEntry, exponential

log = Logger()


class LastTryRetry(RetryAfterCancel):
    """Retries a failing job with exponential backoff on a ``callLater`` chain; the last wait is logged.

    The hand-rolled loop of ``scenarios.retry`` with its canceller fixed:
    every wait is kept in the entry's ``timer``, and the caller's canceller
    cancels it and the running attempt; ``stop()`` cancels every waiting
    retry and every caller. ``CancelledError`` is never retried.
    """

    def _cancel(self, entry: _RetryEntry) -> None:
        if entry.timer is not None and entry.timer.active():
            entry.timer.cancel()
        if entry.current is not None:
            entry.current.cancel()

    def _failed(self, failure: Failure, entry: _RetryEntry, retry: int) -> None:
        if failure.check(defer.CancelledError) or entry.caller.called:
            return  # the caller cancelled the running attempt: give up
        if retry == self.retries:
            entry.caller.errback(failure)
        elif retry + 1 == self.retries:
            log.info("job failed {n} times; one more try", n=retry + 1)
            self._last_wait(entry, retry)
        else:
            entry.timer = self.clock.callLater(self._delay(retry), self._attempt, entry, retry + 1)

    def _delay(self, retry: int) -> float:
        return self.base_ms * 2**retry / 1000

    def _last_wait(self, entry: _RetryEntry, retry: int) -> None:
        entry.timer = self.clock.callLater(self._delay(retry), self._attempt, entry, retry + 1)


class ForgottenLastTryRetry(LastTryRetry):
    """The same retrier, but the wait before the last retry is kept where the canceller does not look.

    BUG: ``_last_wait`` keeps its DelayedCall in a local of its own, not in
    ``entry.timer``: a cancel (or a ``stop()``, which cancels every caller)
    during the wait after the 3rd failure leaves it armed (``stop()`` cancels
    ``entry.timer`` too, so it misses it as well), and the job is
    attempted once more after its caller was told it was cancelled.
    Caught by: ``cancellation.no_start`` (after a cancel); after a ``stop()``,
    which fails the callers without cancelling their Deferreds, by
    ``time.retries`` (an attempt after the caller's Deferred fired).
    """

    def _last_wait(self, entry: _RetryEntry, retry: int) -> None:
        self.clock.callLater(self._delay(retry), self._attempt, entry, retry + 1)


def _retrier(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, retries=RETRIES, backoff_ms=exponential, description=description)


last_try_retry = _retrier(LastTryRetry, "hand-rolled callLater retry whose wait before the last retry is logged")
forgotten_last_try_retry = _retrier(
    ForgottenLastTryRetry, "hand-rolled callLater retry whose cancel misses the wait before the last retry"
)

SCENARIOS = (
    Scenario(
        "scenarios.last_retry:last_try_retry",
        "pass",
        "retry up to 3 times, 100/200/400 ms apart, on callLater; cancel and stop() reach every wait, the last one too",
        "callLater",
    ),
    Scenario(
        "scenarios.last_retry:forgotten_last_try_retry",
        "cancellation.no_start",
        "a cancel or stop during the wait after exactly the 3rd failure in a row: the job is attempted once more",
        "callLater",
        also=("time.retries",),
    ),
)

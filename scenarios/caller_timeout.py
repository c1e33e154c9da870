"""Timeouts that fail the caller whatever the job does (``Target(timeout_fires=True)``).

``Deferred.addTimeout`` fails its Deferred through the job's own
cancellation: at T it calls ``cancel()``, and the caller fails when the job's
Deferred does. A job whose canceller raises (Twisted's long-standing ticket
about cancellers that fail) never fires, so neither does the caller, for
ever. Synapse's ``timeout_deferred`` is written to keep the stronger
promise: it cancels the job, catches what the canceller raises, and fails
the caller itself. A target declares that promise with ``timeout_fires=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .timeout import LIMIT, TIMEOUT_MS, TimeoutPool

log = Logger()


def timeout_deferred(
    job: defer.Deferred[Any],
    timeout: float,
    clock: IReactorTime,
    error: type[Exception] = defer.TimeoutError,
) -> defer.Deferred[Any]:
    """A Deferred of ``job``'s result that fails with ``error`` at ``timeout`` whatever ``job`` does.

    Written after Synapse's ``timeout_deferred``: at the timeout it cancels
    ``job``, logs a canceller that raises, and fails the caller if the
    cancellation did not. Unlike Synapse's, cancelling the returned Deferred
    cancels ``job``.
    """
    timed_out = False

    def cancel(_: defer.Deferred[Any]) -> None:
        job.cancel()

    caller: defer.Deferred[Any] = defer.Deferred(cancel)

    def time_it_out() -> None:
        nonlocal timed_out
        timed_out = True
        try:
            job.cancel()
        except Exception:
            log.failure("the job's canceller raised at its timeout")
        if not caller.called:
            caller.errback(error(f"timed out after {timeout:g}s"))

    timer = clock.callLater(timeout, time_it_out)

    def settle(result: Any) -> None:
        if timer.active():
            timer.cancel()
        if isinstance(result, Failure) and timed_out and result.check(defer.CancelledError):
            result = Failure(error(f"timed out after {timeout:g}s"))
        if caller.called:
            return
        if isinstance(result, Failure):
            caller.errback(result)
        else:
            caller.callback(result)

    job.addBoth(settle)
    return caller


class CallerTimeoutPool:
    """At most ``limit`` jobs at once (``DeferredSemaphore``), each under ``timeout_deferred``.

    The caller fails with ``TimeoutError`` at T even when the job's canceller
    raises; the slot is released then, since the semaphore waits for the
    caller's Deferred, not the job's.
    """

    def __init__(
        self,
        clock: IReactorTime,
        limit: int = LIMIT,
        timeout_ms: int = TIMEOUT_MS,
        error: type[Exception] = defer.TimeoutError,
    ) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000
        self.error = error
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(self._timed, job)

    def _timed(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return timeout_deferred(defer.maybeDeferred(job), self.timeout, self.clock, self.error)


class AddTimeoutPool(TimeoutPool):
    """``scenarios.timeout:timeout_pool`` (``Deferred.addTimeout``) declared with ``timeout_fires=True``.

    BUG: ``addTimeout`` fails the caller only through the job's own
    cancellation. When the job's canceller raises, the exception escapes the
    timeout's delayed call, the job's Deferred never fires, and the caller
    waits for ever, past the timeout it was promised. Caught by:
    ``time.timeout``.
    """


caller_timeout_pool = Target(
    build=CallerTimeoutPool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    timeout_fires=True,
    description="DeferredSemaphore(2) with a timeout_deferred that fails the caller at 300ms whatever the job does",
)

add_timeout_pool = Target(
    build=AddTimeoutPool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    timeout_fires=True,
    description="Deferred.addTimeout promising the caller fails at 300ms whatever the job does",
)

SCENARIOS = (
    Scenario(
        "scenarios.caller_timeout:caller_timeout_pool",
        "pass",
        "the caller fails with TimeoutError at 300ms even when the job's canceller raises (like Synapse's)",
        "callLater, DeferredSemaphore",
    ),
    Scenario(
        "scenarios.caller_timeout:add_timeout_pool",
        "time.timeout",
        "Deferred.addTimeout: a job whose canceller raises leaves the caller unfired for ever",
        "Deferred.addTimeout",
    ),
)

"""Error paths done wrong on top of a correct ``DeferredSemaphore``.

Both pools limit and order work correctly (``DeferredSemaphore.run``); each
mishandles what a failing job produces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python import log
from twisted.python.failure import Failure

from harness import Target

from . import Scenario


class SwallowingPool:
    """Keeps failures "so that one bad job cannot upset the caller's callback chain".

    BUG: the errback records the failure and returns ``None``, which turns
    the failure into a successful ``None`` result for the caller (only
    cancellation is passed through, as the caller asked for it). Caught by:
    ``errors.propagate``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)
        self.errors: list[Failure] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(job).addErrback(self._keep)

    def _keep(self, failure: Failure) -> Failure | None:
        if failure.check(defer.CancelledError):
            return failure
        self.errors.append(failure)
        return None  # BUG: the caller gets None instead of the error


class TeePool:
    """Hands the caller its own Deferred and tees the job's outcome into it.

    BUG: the tee callback returns the outcome it passed on, so when the job
    fails the pool's internal Deferred ends its chain still holding the
    failure; nobody else is attached to it, and when it is garbage collected
    Twisted logs "Unhandled error in Deferred" for an error the caller did
    get. Caught by: ``errors.unhandled``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running = self._sem.run(job)
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: running.cancel())
        running.addBoth(self._tee, caller)
        return caller

    def _tee(self, result: Any, caller: defer.Deferred[Any]) -> Any:
        if not caller.called:
            if isinstance(result, Failure):
                caller.errback(result)
            else:
                caller.callback(result)
        return result  # BUG: should end the internal chain with None


class BookkeepingPool:
    """Counts each job's outcome, in a step that logs its own errors (``log.err``) so that bookkeeping
    never upsets the caller, who gets the job's outcome as it was.

    BUG: a failure is counted under its error's type name in a plain dict, never set up: a ``KeyError``,
    logged, on every failed job (the counts are wrong, and nothing but the log says so). Caught by:
    ``errors.logged`` (the target declares ``logs=()``: the pool logs nothing but its jobs' errors).
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)
        self.counts: dict[str, int] = {"ok": 0}

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(job).addBoth(self._count)

    def _count(self, result: Any) -> Any:
        try:
            name = result.type.__name__ if isinstance(result, Failure) else "ok"
            self.counts[name] += 1  # BUG: a failure's type name was never set up
        except Exception:
            log.err(None, "counting a job's outcome failed")
        return result


swallowing_pool = Target(
    build=lambda clock: SwallowingPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="DeferredSemaphore pool whose errback keeps failures and returns None",
)

tee_pool = Target(
    build=lambda clock: TeePool(clock, limit=2),
    limit=2,
    order="fifo",
    description="DeferredSemaphore pool teeing results into the caller and leaving failures on its own Deferred",
)

bookkeeping_pool = Target(
    build=lambda clock: BookkeepingPool(clock, limit=2),
    limit=2,
    order="fifo",
    logs=(),
    description="DeferredSemaphore pool whose outcome counting logs a KeyError for every failed job",
)

SCENARIOS = (
    Scenario(
        "scenarios.error_paths:swallowing_pool",
        "errors.propagate",
        "DeferredSemaphore pool whose errback records the failure and returns None: the caller gets None",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.error_paths:tee_pool",
        "errors.unhandled",
        "pool teeing the job's outcome into the caller's Deferred and returning it: failures left unhandled",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.error_paths:bookkeeping_pool",
        "errors.logged",
        "pool counting outcomes in a step that logs its own errors: a KeyError logged for every failed job (logs=())",
        "DeferredSemaphore",
    ),
)

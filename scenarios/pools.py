"""Worker pools: a correct one on DeferredSemaphore, and a hand-rolled one that leaks capacity."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario
from ._pool import Entry, Pool


class SemaphorePool:
    """At most ``limit`` jobs at once, the idiomatic way: ``DeferredSemaphore.run``.

    Waiting jobs are queued FIFO; cancelling a waiting job removes it from the
    queue, cancelling a running one cancels the job's own Deferred.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(job)


class DoubleReleasePool(Pool):
    """A hand-rolled pool that gives a slot back twice when a job fails.

    The shared pool skeleton (``scenarios._pool.Pool``) but for ``_start``.
    BUG: ``_start`` adds ``_failed``, which releases the slot so "a failing
    job frees capacity early", and the ``_release`` cleanup releases it
    again. After one failure the pool believes it has a spare slot and runs
    one job too many. (``_start`` also starts the next job before it
    delivers the result, as pools that chain the job's Deferred to the
    caller's do.) Caught by: ``concurrency.limit``.
    """

    def _start(self, entry: Entry) -> None:
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.addErrback(self._failed)  # BUG: a second release of the slot when the job fails
        entry.running.addBoth(self._release)
        entry.running.chainDeferred(entry.caller)

    def _failed(self, failure: Any) -> Any:
        self.active -= 1
        return failure

    def _release(self, result: Any) -> Any:
        self.active -= 1
        self._pump()
        return result


semaphore_pool = Target(
    build=lambda clock: SemaphorePool(clock, limit=2),
    limit=2,
    order="fifo",
    description="worker pool on DeferredSemaphore(2)",
)

double_release_pool = Target(
    build=lambda clock: DoubleReleasePool(clock, limit=2),
    limit=2,
    description="hand-rolled pool that releases a slot twice when a job fails",
)

SCENARIOS = (
    Scenario(
        "scenarios.pools:semaphore_pool",
        "pass",
        "worker pool on DeferredSemaphore(2): at most two jobs at once, FIFO",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.pools:double_release_pool",
        "concurrency.limit",
        "hand-rolled pool that releases a slot twice when a job fails, then runs one job too many",
        "Deferred",
    ),
)

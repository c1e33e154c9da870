"""Worker pools: a correct one on DeferredSemaphore, and a hand-rolled one that leaks capacity."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target


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


class DoubleReleasePool:
    """A hand-rolled pool that gives a slot back twice when a job fails.

    BUG: ``_failed`` releases the slot so "a failing job frees capacity early",
    and the ``addBoth`` cleanup releases it again. After one failure the pool
    believes it has a spare slot and runs one job too many.
    Caught by: ``concurrency.limit``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self.active = 0
        self.waiting: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting.append((job, d))
        self._pump()
        return d

    def _pump(self) -> None:
        while self.waiting and self.active < self.limit:
            job, d = self.waiting.pop(0)
            self.active += 1
            result = defer.maybeDeferred(job)
            result.addErrback(self._failed)
            result.addBoth(self._release)
            result.chainDeferred(d)

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
    description="worker pool on DeferredSemaphore(2)",
)

double_release_pool = Target(
    build=lambda clock: DoubleReleasePool(clock, limit=2),
    limit=2,
    description="hand-rolled pool that releases a slot twice when a job fails",
)

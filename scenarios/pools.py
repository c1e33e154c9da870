"""Worker pools: a correct one on DeferredSemaphore, and a hand-rolled one that leaks capacity."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario


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
        self.waiting: list[_Entry] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        entry = _Entry(job)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        self.waiting.append(entry)
        self._pump()
        return entry.caller

    def _cancel(self, entry: _Entry) -> None:
        if entry in self.waiting:
            self.waiting.remove(entry)  # the caller's Deferred then fails with CancelledError
        elif entry.running is not None:
            entry.running.cancel()

    def _pump(self) -> None:
        while self.waiting and self.active < self.limit:
            entry = self.waiting.pop(0)
            self.active += 1
            entry.running = defer.maybeDeferred(entry.job)
            entry.running.addErrback(self._failed)
            entry.running.addBoth(self._release)
            entry.running.chainDeferred(entry.caller)

    def _failed(self, failure: Any) -> Any:
        self.active -= 1
        return failure

    def _release(self, result: Any) -> Any:
        self.active -= 1
        self._pump()
        return result


class _Entry:
    """One submission: the job, the caller's Deferred, and the job's own Deferred once it runs."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] | None = None
        self.running: defer.Deferred[Any] | None = None


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

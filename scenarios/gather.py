"""A "limit" built on ``DeferredList``: it waits for jobs, it does not hold them back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario


class BatchThrottle:
    """Meant to run jobs ``limit`` at a time, in batches closed by a ``DeferredList``.

    BUG: every job is called as soon as it is submitted; the ``DeferredList``
    built over each full batch only *waits* for jobs that are already
    running, and nothing waits for it. ``DeferredList`` and ``gatherResults``
    limit nothing. Caught by: ``concurrency.limit``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self._batch: list[defer.Deferred[Any]] = []
        self._barrier: defer.Deferred[Any] | None = None

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        d = defer.maybeDeferred(job)
        self._batch.append(d)
        if len(self._batch) == self.limit:
            batch, self._batch = self._batch, []
            # "Wait for this batch before the next one", except that nothing waits on the barrier.
            self._barrier = defer.DeferredList(batch)
        return d


gather_throttle = Target(
    build=lambda clock: BatchThrottle(clock, limit=2),
    limit=2,
    description="batches of two closed by a DeferredList that limits nothing",
)

SCENARIOS = (
    Scenario(
        "scenarios.gather:gather_throttle",
        "concurrency.limit",
        "'two at a time' with a DeferredList per batch: the jobs already run when they are put in the list",
        "DeferredList",
    ),
)

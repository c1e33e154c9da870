"""Priority scheduling, hand-rolled on ``heapq`` (``Deferred`` has no notion of priority).

The reference scheduler keeps waiting jobs in a heap keyed by (higher
priority first, then submission order) and starts the best one whenever a
slot frees up; a cancelled waiting job is deleted lazily (skipped when it
reaches the top).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario


class SchedulerStopped(Exception):
    """The scheduler was stopped before the job could run."""


class _Entry:
    __slots__ = ("job", "priority", "caller", "running", "cancelled")

    def __init__(self, job: Callable[[], Any], priority: int) -> None:
        self.job = job
        self.priority = priority
        self.caller: defer.Deferred[Any] = defer.Deferred()
        self.running: defer.Deferred[Any] | None = None
        self.cancelled = False


class PriorityPool:
    """At most ``limit`` jobs at once; a free slot goes to the highest-priority waiting job (FIFO among equals)."""

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self.active = 0
        self._heap: list[tuple[int, int, _Entry]] = []
        self._seq = itertools.count()
        self._stopped = False

    def submit(self, job: Callable[[], Any], priority: int = 0) -> defer.Deferred[Any]:
        if self._stopped:
            return defer.fail(SchedulerStopped("submitted after stop()"))
        entry = _Entry(job, priority)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        heapq.heappush(self._heap, (-priority, next(self._seq), entry))
        self._pump()
        return entry.caller

    def stop(self) -> None:
        self._stopped = True
        heap, self._heap = self._heap, []
        for _, _, entry in sorted(heap):
            if not entry.cancelled:
                entry.caller.errback(SchedulerStopped("scheduler stopped before the job ran"))

    def _cancel(self, entry: _Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()  # its CancelledError reaches the caller through _done
        else:
            entry.cancelled = True  # lazy deletion: skipped when it reaches the top of the heap

    def _pump(self) -> None:
        while self._heap and self.active < self.limit:
            _, _, entry = heapq.heappop(self._heap)
            if entry.cancelled:
                continue
            self.active += 1
            entry.running = defer.maybeDeferred(entry.job)
            entry.running.addBoth(self._done, entry)

    def _done(self, result: Any, entry: _Entry) -> None:
        self.active -= 1
        if not entry.caller.called:
            if isinstance(result, Failure):
                entry.caller.errback(result)
            else:
                entry.caller.callback(result)
        self._pump()


priority_pool = Target(
    build=lambda clock: PriorityPool(clock, limit=2),
    limit=2,
    order="priority",
    description="heapq priority scheduler, two jobs at once, lazy deletion of cancelled jobs",
)

SCENARIOS = (
    Scenario(
        "scenarios.priority:priority_pool",
        "pass",
        "hand-rolled heapq priority scheduler: two at once, highest priority first, FIFO among equals",
        "heapq + Deferred",
    ),
)

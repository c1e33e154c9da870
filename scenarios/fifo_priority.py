"""A pool that takes a priority and ignores it: the plain FIFO order a priority promise must not pass.

The promise it declares (``order="priority"``): whenever a job starts, no
job already waiting has a higher priority, and jobs of equal priority start
in submission order. ``scenarios.priority:priority_pool`` keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Menu, Target

from . import Scenario

LIMIT = 1


class FifoPriorityPool:
    """``DeferredSemaphore.run`` behind a ``submit(job, priority)`` signature.

    BUG: the priority is accepted and dropped. ``DeferredSemaphore`` serves
    its waiters first come first served, so an urgent job submitted while
    others wait starts after all of them. Caught by: ``concurrency.priority``.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any], priority: int = 0) -> defer.Deferred[Any]:
        return self._sem.run(job)  # BUG: priority ignored


fifo_priority_pool = Target(
    build=FifoPriorityPool,
    limit=LIMIT,
    order="priority",
    # Bursts: short gaps, so that jobs of different priorities wait together.
    menu=Menu(max_gap_ms=50, priorities=3),
    description="DeferredSemaphore pool that accepts a priority and ignores it (plain FIFO)",
)

SCENARIOS = (
    Scenario(
        "scenarios.fifo_priority:fifo_priority_pool",
        "concurrency.priority",
        "priority accepted and ignored: a plain FIFO DeferredSemaphore declared order='priority'",
        "DeferredSemaphore",
    ),
)

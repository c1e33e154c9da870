"""A resource used by one job at a time: ``DeferredLock.run``.

A connection, a file or a device that must not be used concurrently: every
job takes the lock, runs, and gives it back when its Deferred fires. Waiters
are served in the order they asked; cancelling a waiter takes it out of the
lock's queue, cancelling the holder cancels the job's own Deferred.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario


class SerialResource:
    """Runs the jobs submitted to it one at a time, first come first served."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._lock = defer.DeferredLock()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._lock.run(job)


lock_resource = Target(
    build=SerialResource,
    limit=1,
    order="fifo",
    description="a resource serialised with DeferredLock.run: one job at a time, FIFO",
)

#: The same lock declaring only what a caller sees without reading its code: FIFO order, no limit.
#: No declared limit is no promise of parallelism: a job waiting behind one that hangs is not stuck.
lock_without_limit = Target(
    build=SerialResource,
    order="fifo",
    description="DeferredLock.run declared without its limit of one: jobs queued behind a hanging one are not stuck",
)

SCENARIOS = (
    Scenario(
        "scenarios.lock:lock_resource",
        "pass",
        "a resource serialised with DeferredLock.run: one job at a time, in submission order",
        "DeferredLock",
    ),
    Scenario(
        "scenarios.lock:lock_without_limit",
        "pass",
        "the same DeferredLock with no limit declared: waiting behind a hanging job is not a deadlock",
        "DeferredLock",
    ),
)
